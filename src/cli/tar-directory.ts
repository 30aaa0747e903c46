/** A directory as a tar stream (for `load -i <OCI layout directory>`). */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TarWriter } from '../archive/tar-writer.js';

export function tarDirectory(root: string): Readable {
  const writer = new TarWriter();
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const st = await lstat(path);
      const common = { mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: st.mtime };
      if (st.isDirectory()) {
        await writer.add({ name: `${rel}/`, type: 'directory', ...common });
        await walk(path, rel);
      } else if (st.isSymbolicLink()) {
        await writer.add({ name: rel, type: 'symlink', linkname: await readlink(path), ...common });
      } else if (st.isFile()) {
        await writer.add({ name: rel, type: 'file', size: st.size, ...common }, createReadStream(path));
      }
    }
  };
  walk(root, '').then(
    () => writer.finish(),
    (err: unknown) => writer.stream.destroy(err as Error),
  );
  return writer.stream;
}
