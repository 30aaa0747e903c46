// Builds everything berth runs: the TypeScript into dist/, and the C shim (when present).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${cmd} ${args.join(' ')} failed`);
    process.exit(r.status ?? 1);
  }
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
// The C parts: the per-container shim, and the small N-API addon for the syscalls Node lacks.
for (const dir of ['shim', 'native']) {
  if (existsSync(join(root, dir, 'Makefile'))) run('make', ['-s', '-C', dir]);
}
