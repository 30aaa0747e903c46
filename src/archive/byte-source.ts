import type { Readable } from 'node:stream';
import { InvalidArgument } from '../errors/errors.js';

const EMPTY = Buffer.alloc(0);

/**
 * Sequential access to the bytes of a Readable, in slices of the chunks it delivers: no
 * copy unless a small read spans chunks. One reader at a time; the caller serialises.
 */
export class ByteSource {
  #input: Readable;
  #it: AsyncIterator<unknown>;
  #buf: Buffer = EMPTY;
  #eof = false;
  #closed = false;
  /** Bytes handed out so far, for error messages. */
  position = 0;

  constructor(input: Readable) {
    this.#input = input;
    this.#it = input[Symbol.asyncIterator]();
  }

  /** Makes sure some bytes are buffered; false at the end of the input. */
  async fill(): Promise<boolean> {
    while (this.#buf.length === 0) {
      if (this.#eof) return false;
      const next = await this.#it.next();
      if (next.done === true) {
        this.#eof = true;
        return false;
      }
      this.#buf = toBuffer(next.value);
    }
    return true;
  }

  /** Up to `max` bytes that are already buffered, or null when none are. */
  takeBuffered(max: number): Buffer | null {
    const buf = this.#buf;
    if (buf.length === 0) return null;
    if (buf.length <= max) {
      this.#buf = EMPTY;
      this.position += buf.length;
      return buf;
    }
    this.#buf = buf.subarray(max);
    this.position += max;
    return buf.subarray(0, max);
  }

  /** The next slice of at most `max` bytes, or null at the end of the input. */
  async chunk(max: number): Promise<Buffer | null> {
    if (this.#buf.length === 0 && !(await this.fill())) return null;
    return this.takeBuffered(max);
  }

  /** Exactly `n` bytes, or fewer only at the end of the input. `n` must be small. */
  async read(n: number): Promise<Buffer> {
    if (this.#buf.length >= n) return this.takeBuffered(n)!;
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
    this.#buf = EMPTY;
    while (await this.fill()) this.#buf = EMPTY;
  }

  /**
   * Stops reading; destroys the input if it was not read to its end, so that whatever
   * feeds it (a socket, a decompressor process) stops too. Does not wait: a read still
   * pending on the input fails with the destruction.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#buf = EMPTY;
    if (!this.#eof) this.#input.destroy();
  }
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new InvalidArgument(
    `archive/tar: expected a byte stream, got a chunk of type ${typeof chunk} (is the input in object or string mode?)`,
  );
}
