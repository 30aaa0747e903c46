/**
 * The build context: the tar a client sends, unpacked into a scratch folder that the
 * builder alone owns, and read back only through the root-confined helpers of
 * src/containers (the tar is hostile input: `../x` entries are refused by the extraction,
 * and a symlink in it, absolute or not, resolves inside the context, never outside).
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, constants as fsc, fstatSync, lstatSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { decompressStream, detectCompression } from '../archive/decompress.js';
import { readTar } from '../archive/tar-reader.js';
import { TarWriter } from '../archive/tar-writer.js';
import { InvalidArgument, NotFound, errnoCode } from '../errors/errors.js';
import { extractInRoot } from '../containers/archive-extract.js';
import { cleanPath } from '../containers/archive-path.js';
import { O_PATH, openIn, resolveInScope } from '../containers/archive-root.js';
import { archiveInRoot } from '../containers/archive-tar.js';
import { dockerignorePatterns, globRegExp, isExcluded, type IgnorePattern } from './dockerignore.js';

/** One source of a COPY/ADD, found in the context. */
export interface ContextSource {
  /** Absolute in the context, symlinks followed inside it ("/dir/file"). */
  path: string;
  /** As the Dockerfile names it (after wildcards), for messages and base names. */
  shown: string;
  isDir: boolean;
}

/** Who owns what a copy writes (`--chown`, root by default), and `--chmod`'s mode if given. */
export interface CopyOwner {
  uid: number;
  gid: number;
  mode?: number;
}

/** A copied entry's header with the copy's owner (and mode, except for symlinks). */
export function ownedHeader<T extends { type: string; mode: number }>(header: T, owner: CopyOwner): T & { uid: number; gid: number; uname: string; gname: string } {
  const mode = owner.mode !== undefined && header.type !== 'symlink' ? owner.mode : header.mode;
  return { ...header, mode, uid: owner.uid, gid: owner.gid, uname: '', gname: '' };
}

/** One entry of a copy: where the source's top entry lands, relative to the root ("app/x"). */
export interface CopyPlan {
  source: ContextSource;
  /** The tar name of the top entry; "." for the root itself. */
  target: string;
}

export class BuildContext {
  /** The folder holding the unpacked context (the root of every path here). */
  readonly root: string;
  readonly #scratch: string;
  /** Paths the .dockerignore excludes, relative, cleaned. */
  readonly #ignore: IgnorePattern[];

  private constructor(scratch: string, root: string, ignore: IgnorePattern[]) {
    this.#scratch = scratch;
    this.root = root;
    this.#ignore = ignore;
  }

  /** Unpacks the (possibly compressed) context tar into a new folder under `scratchDir`. */
  static async unpack(scratchDir: string, body: Readable): Promise<BuildContext> {
    await mkdir(scratchDir, { recursive: true, mode: 0o700 });
    const scratch = await mkdtemp(join(scratchDir, 'build-'));
    const root = join(scratch, 'context');
    try {
      await mkdir(root, { mode: 0o755 });
      await extractInRoot(root, '/', await decompressStream(body), { noOverwriteDirNonDir: false, owner: 'archive', shownRoot: '' });
      const ignore = dockerignorePatterns(readInRoot(root, '/.dockerignore'));
      return new BuildContext(scratch, root, ignore);
    } catch (err) {
      await rm(scratch, { recursive: true, force: true });
      if (err instanceof InvalidArgument) throw new InvalidArgument(`the build context is refused: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /** The Dockerfile at `name` (relative to the context), read inside it. */
  dockerfile(name: string): string {
    const text = readInRoot(this.root, `/${name}`);
    if (text === undefined) {
      throw new InvalidArgument(`Cannot locate specified Dockerfile: ${name}`);
    }
    return text;
  }

  /** The content of the file at `path` (absolute in the context), opened inside it. */
  fileStream(path: string): Readable {
    return createReadStream('', { fd: openIn(this.root, path, fsc.O_RDONLY) });
  }

  /** Whether the file at `path` is a tar archive, compressed or not (ADD unpacks those). */
  looksLikeArchive(path: string): boolean {
    const fd = openIn(this.root, path, fsc.O_RDONLY);
    try {
      const head = Buffer.alloc(512);
      const n = readSync(fd, head, 0, head.length, 0);
      if (n < 6) return false;
      if (detectCompression(head.subarray(0, n)) !== 'none') return true;
      return n >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
    } finally {
      closeSync(fd);
    }
  }

  /** A new empty folder of the build's own, next to the context (removed with it). */
  async scratchFolder(name: string): Promise<string> {
    return mkdtemp(join(this.#scratch, `${name}-`));
  }

  async remove(): Promise<void> {
    await rm(this.#scratch, { recursive: true, force: true });
  }

  /**
   * The sources a COPY/ADD names: each path cleaned and kept inside the context, wildcards
   * (`*`, `?`, `[…]`) matched against the context's paths, excluded files left out.
   */
  sources(names: readonly string[], command: string): ContextSource[] {
    const out: ContextSource[] = [];
    for (const name of names) {
      const rel = cleanPath(`/${name}`).slice(1);
      if (/[*?[]/.test(rel)) {
        const pattern = globRegExp(rel);
        const matches = this.#walk().filter((p) => pattern.test(p));
        for (const m of matches) out.push(this.#source(m, command));
        continue;
      }
      if (rel !== '' && this.#ignored(rel)) {
        throw new NotFound(`${command} failed: file not found in build context or excluded by .dockerignore: stat ${name}: file does not exist`);
      }
      out.push(this.#source(rel, command));
    }
    if (out.length === 0) throw new InvalidArgument(`${command} failed: no source files were specified`);
    return out;
  }

  #source(rel: string, command: string): ContextSource {
    const path = resolveInScope(this.root, `/${rel}`);
    let fd: number;
    try {
      fd = openIn(this.root, path, O_PATH);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
        throw new NotFound(`${command} failed: file not found in build context or excluded by .dockerignore: stat ${rel}: file does not exist`);
      }
      throw err;
    }
    try {
      return { path, shown: rel === '' ? '.' : rel, isDir: fstatSync(fd).isDirectory() };
    } finally {
      closeSync(fd);
    }
  }

  /** Every path of the context, relative, without following symlinks, excluded ones left out. */
  #walk(): string[] {
    const out: string[] = [];
    const visit = (rel: string) => {
      for (const name of readdirSync(join(this.root, rel)).sort()) {
        const child = rel === '' ? name : `${rel}/${name}`;
        if (this.#ignored(child)) continue;
        out.push(child);
        if (lstatSync(join(this.root, child)).isDirectory()) visit(child);
      }
    };
    visit('');
    return out;
  }

  #ignored(rel: string): boolean {
    return isExcluded(rel, this.#ignore);
  }

  /**
   * The copy as one tar: each source's tree named after its target, owned by `owner`
   * (root unless --chown says otherwise), in the order given. `excluded` entries of the
   * context are left out of directories.
   */
  copyTar(plans: readonly CopyPlan[], owner: CopyOwner): Readable {
    const writer = new TarWriter();
    const output = writer.stream;
    (async () => {
      for (const plan of plans) {
        const started = archiveInRoot(this.root, plan.source.path, plan.target);
        const top = plan.source.path.slice(1);
        for await (const { header, body } of readTar(started.stream)) {
          // The entry's path in the context, to honour .dockerignore inside copied folders.
          const below = header.name === plan.target ? '' : header.name.slice(plan.target.length + 1).replace(/\/$/, '');
          const contextPath = below === '' ? top : top === '' ? below : `${top}/${below}`;
          if (below !== '' && this.#ignored(contextPath)) {
            body.resume();
            continue;
          }
          const renamed = ownedHeader(header, owner);
          if (header.type === 'file') {
            await writer.add(renamed, body);
          } else {
            body.resume();
            await writer.add(renamed);
          }
        }
        await started.done;
      }
      await writer.finish();
    })().catch((err: unknown) => {
      if (!output.destroyed) output.destroy(err instanceof Error ? err : new Error(String(err)));
    });
    return output;
  }
}

/**
 * The hash of a copy, as docker's "file:"/"dir:" content hashes: names, types, modes,
 * owners, link targets and contents, not times (a touched file hits the cache).
 */
export async function hashTar(tar: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const { header, body } of readTar(tar)) {
    hash.update(JSON.stringify([header.name, header.type, header.mode, header.uid, header.gid, header.linkname, header.size]));
    for await (const chunk of body) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** A file of the context read through the root (its symlinks resolved inside it), or undefined. */
function readInRoot(root: string, path: string): string | undefined {
  let fd: number;
  try {
    fd = openIn(root, path, fsc.O_RDONLY);
  } catch (err) {
    if (['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV'].includes(errnoCode(err) ?? '')) return undefined;
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
