/**
 * `HostConfig.SecurityOpt`, parsed as Docker's daemon parses it:
 *   no-new-privileges[=|:true|false]   seccomp=unconfined|builtin|<profile JSON>|<path>
 *   apparmor=..., label=..., disable    accepted and ignored (no AppArmor or SELinux here)
 *   writable-cgroups[=true|false]
 * The docker CLI reads a `seccomp=<file>` itself and sends the JSON; a value that is not
 * JSON is taken as a path on the daemon's host, which the berth CLI may send.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';

import { InvalidArgument } from '../errors/errors.js';
import { parseSeccompProfile, type SeccompProfile } from './seccomp-profile.js';

export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** 'default' (Docker's profile), 'unconfined' (none), or a custom profile. */
  seccomp: 'default' | 'unconfined' | SeccompProfile;
  /** undefined: writable only when privileged, as Docker. */
  writableCgroups?: boolean;
}

function parseBool(text: string): boolean | undefined {
  switch (text.toLowerCase()) {
    case '1': case 't': case 'true':
      return true;
    case '0': case 'f': case 'false':
      return false;
    default:
      return undefined;
  }
}

function seccompFrom(value: string): SecurityOptions['seccomp'] {
  if (value === 'unconfined') return 'unconfined';
  if (value === 'builtin' || value === '') return 'default';
  if (value.trimStart().startsWith('{')) return parseSeccompProfile(value);
  if (!isAbsolute(value)) {
    throw new InvalidArgument(`invalid --security-opt seccomp=${value}: expected "unconfined", a profile's JSON or an absolute path to one`);
  }
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (err) {
    throw new InvalidArgument(`opening seccomp profile (${value}) failed: ${(err as Error).message}`, { cause: err });
  }
  return parseSeccompProfile(text);
}

export function parseSecurityOpts(options: readonly string[] | null | undefined): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: false, seccomp: 'default' };
  for (const opt of options ?? []) {
    if (opt === 'no-new-privileges') {
      out.noNewPrivileges = true;
      continue;
    }
    if (opt === 'writable-cgroups') {
      out.writableCgroups = true;
      continue;
    }
    if (opt === 'disable') continue;
    const eq = opt.indexOf('=');
    const colon = opt.indexOf(':');
    const at = eq >= 0 ? eq : colon;
    if (at < 0) throw new InvalidArgument(`invalid --security-opt 1: "${opt}"`);
    const key = opt.slice(0, at);
    const value = opt.slice(at + 1);
    switch (key) {
      case 'label':
      case 'apparmor':
        break;
      case 'seccomp':
        out.seccomp = seccompFrom(value);
        break;
      case 'no-new-privileges':
      case 'writable-cgroups': {
        const flag = parseBool(value);
        if (flag === undefined) throw new InvalidArgument(`invalid --security-opt 2: "${opt}"`);
        if (key === 'no-new-privileges') out.noNewPrivileges = flag;
        else out.writableCgroups = flag;
        break;
      }
      default:
        throw new InvalidArgument(`invalid --security-opt 2: "${opt}"`);
    }
  }
  return out;
}
