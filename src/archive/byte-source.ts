import type { Readable } from 'node:stream';
import { InvalidArgument } from '../errors/errors.js';

/** Bytes queued from the input before it is paused. */
const HIGH_WATER_MARK = 256 * 1024;

/**
 * Sequential access to the bytes of a Readable, handed out as slices of the very chunks it
 * emits (its 'data' events: `read()` would concatenate whatever is buffered, a copy). Small
 * reads that span chunks are the only copies. One reader at a time; the caller serialises.
 */
export class ByteSource {
  #input: Readable;
  /** Queued chunks from index #head on; the first may be the rest of a partly read one. */
  #chunks: Buffer[] = [];
  #head = 0;
  #queued = 0;
  #paused = false;
  #ended = false;
  #failure: Error | null = null;
  #closed = false;
  #wake: (() => void) | null = null;
  /** Bytes handed out so far, for error messages. */
  position = 0;

  #what: string;

  /** `what` names the input in errors, context first ("archive/tar: the input"). */
  constructor(input: Readable, what = 'archive/tar: the input') {
    this.#what = what;
    this.#input = input;
    input.on('data', this.#onData);
    input.once('end', this.#onEnd);
    input.on('error', this.#onError);
    input.once('close', this.#onClose);
    // An input that failed or closed before it was handed here sends no more events.
    if (input.errored) this.#onError(input.errored);
    else if (input.destroyed) this.#onClose();
  }

  #onData = (chunk: unknown): void => {
    let buf: Buffer;
    try {
      buf = toBuffer(chunk, this.#what);
    } catch (err) {
      this.#onError(err as Error);
      this.#input.destroy();
      return;
    }
    if (buf.length === 0) return;
    this.#chunks.push(buf);
    this.#queued += buf.length;
    if (this.#queued >= HIGH_WATER_MARK && !this.#paused) {
      this.#paused = true;
      this.#input.pause();
    }
    this.#notify();
  };

  #onEnd = (): void => {
    this.#ended = true;
    this.#notify();
  };

  #onError = (err: Error): void => {
    this.#failure ??= err;
    this.#notify();
  };

  #onClose = (): void => {
    if (!this.#ended && this.#failure === null && !this.#closed) {
      this.#failure = new InvalidArgument(`${this.#what} was closed before its end`);
    }
    this.#notify();
  };

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Makes sure some bytes are queued; false at the end of the input. */
  async fill(): Promise<boolean> {
    while (this.#queued === 0) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#ended || this.#closed) return false;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    return true;
  }

  /** Up to `max` bytes that are already queued (one slice, no copy), or null when none are. */
  takeBuffered(max: number): Buffer | null {
    if (this.#queued === 0) return null;
    const first = this.#chunks[this.#head]!;
    let out: Buffer;
    if (first.length <= max) {
      this.#head++;
      if (this.#head === this.#chunks.length) {
        this.#chunks = [];
        this.#head = 0;
      } else if (this.#head >= 1024) {
        this.#chunks = this.#chunks.slice(this.#head);
        this.#head = 0;
      }
      out = first;
    } else {
      this.#chunks[this.#head] = first.subarray(max);
      out = first.subarray(0, max);
    }
    this.#queued -= out.length;
    this.position += out.length;
    if (this.#paused && this.#queued < HIGH_WATER_MARK / 2) {
      this.#paused = false;
      this.#input.resume();
    }
    return out;
  }

  /** The next slice of at most `max` bytes, or null at the end of the input. */
  async chunk(max: number): Promise<Buffer | null> {
    if (this.#queued === 0 && !(await this.fill())) return null;
    return this.takeBuffered(max);
  }

  /** Exactly `n` bytes, or fewer only at the end of the input. `n` must be small. */
  async read(n: number): Promise<Buffer> {
    const first = this.#chunks[this.#head];
    if (first !== undefined && first.length >= n) return this.takeBuffered(n)!;
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const part = await this.chunk(n - got);
      if (part === null) break;
      parts.push(part);
      got += part.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  /** The first `n` bytes (fewer at the end of the input), left in place to be read again. */
  async peek(n: number): Promise<Buffer> {
    while (this.#queued < n) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#ended || this.#closed) break;
      // Queue more than the high-water mark if that is what it takes to see n bytes.
      if (this.#paused) {
        this.#paused = false;
        this.#input.resume();
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    const parts: Buffer[] = [];
    let got = 0;
    for (let i = this.#head; i < this.#chunks.length && got < n; i++) {
      const part = this.#chunks[i]!.subarray(0, n - got);
      parts.push(part);
      got += part.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Discards up to `n` bytes; returns how many were discarded (fewer only at the end). */
  async skip(n: number): Promise<number> {
    let done = 0;
    while (done < n) {
      const part = await this.chunk(n - done);
      if (part === null) break;
      done += part.length;
    }
    return done;
  }

  /** Reads and discards everything left, so upstream producers (digesters, pipes) finish. */
  async drain(): Promise<void> {
    while ((await this.chunk(Number.MAX_SAFE_INTEGER)) !== null) {
      // discard
    }
  }

  /**
   * Stops reading; destroys the input if it was not read to its end, so that whatever
   * feeds it (a socket, a decompressor process) stops too.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#head = 0;
    this.#queued = 0;
    this.#input.off('data', this.#onData);
    if (!this.#ended && !this.#input.destroyed) this.#input.destroy();
    this.#notify();
  }
}

function toBuffer(chunk: unknown, what: string): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new InvalidArgument(`${what} is not a byte stream: it gave a chunk of type ${typeof chunk} (object or string mode?)`);
}
