/**
 * Runs CNI plugins (Debian's containernetworking-plugins) the way the CNI spec says: the
 * plugin binary with CNI_* variables in its environment and the network's configuration on
 * stdin; its result (or its error) as JSON on stdout.
 */
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { NotImplemented, Unavailable } from '../errors/errors.js';

/** Where Debian's containernetworking-plugins puts its plugins; `BERTH_CNI_PATH` overrides it. */
export const DEFAULT_CNI_PATH = '/usr/lib/cni';

export const CNI_VERSION = '1.0.0';

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

export interface CniResult {
  interfaces?: CniInterface[];
  ips?: Array<{ interface?: number; address: string; gateway?: string }>;
  routes?: Array<{ dst: string; gw?: string }>;
}

export interface CniCall {
  command: 'ADD' | 'DEL' | 'CHECK';
  containerId: string;
  /** The network namespace's path (may be empty for DEL once it is gone). */
  netns: string;
  ifName: string;
  /** The plugin's configuration, `type` naming the plugin. */
  config: Record<string, unknown> & { type: string; name: string };
}

export function cniPath(): string {
  return process.env['BERTH_CNI_PATH'] ?? DEFAULT_CNI_PATH;
}

/** Runs one plugin; answers its result for ADD, nothing for DEL and CHECK. */
export async function runPlugin(call: CniCall): Promise<CniResult> {
  const dir = cniPath();
  const binary = join(dir, call.config.type);
  try {
    await access(binary);
  } catch {
    throw new NotImplemented(
      `network: CNI plugin "${call.config.type}" not found in ${dir} (install containernetworking-plugins)`,
    );
  }
  const config = JSON.stringify({ cniVersion: CNI_VERSION, ...call.config });
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(binary, [], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: call.command,
        CNI_CONTAINERID: call.containerId,
        CNI_NETNS: call.netns,
        CNI_IFNAME: call.ifName,
        CNI_PATH: dir,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ code: status, stdout: out, stderr: err }));
    child.stdin.end(config);
  });
  if (code !== 0) {
    let message = stderr.trim() || stdout.trim();
    try {
      const parsed = JSON.parse(stdout) as { msg?: string; details?: string };
      if (parsed.msg) message = parsed.details ? `${parsed.msg}: ${parsed.details}` : parsed.msg;
    } catch {
      // Not JSON: the text as it is.
    }
    throw new Unavailable(`network: CNI plugin ${call.config.type} ${call.command} failed: ${message || `exit status ${code}`}`);
  }
  if (call.command !== 'ADD') return {};
  try {
    return JSON.parse(stdout) as CniResult;
  } catch {
    throw new Unavailable(`network: CNI plugin ${call.config.type} answered ADD with no JSON result`);
  }
}
