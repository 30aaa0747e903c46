/**
 * Docker's stream multiplexing, used for non-TTY logs, attach and exec: every write becomes
 * one frame,
 *
 *   [stream u8][0][0][0][payload length u32 big-endian][payload ...]
 *
 * so stdout and stderr can share one byte stream. With a TTY there is no framing at all.
 */
import { InvalidArgument } from '../errors/errors.js';

export const enum StdStream {
  Stdin = 0,
  Stdout = 1,
  Stderr = 2,
  /** Docker's "system error" stream: the daemon reports a failure inside the stream. */
  Systemerr = 3,
}

const HEADER = 8;
const MAX_PAYLOAD = 0xffff_ffff;
/** A declared length beyond this is treated as a corrupt stream rather than buffered. */
const DEFAULT_MAX_FRAME = 64 * 1024 * 1024;

/** One frame: the 8-byte header followed by the payload. */
export function frame(stream: StdStream, payload: Buffer): Buffer {
  if (payload.length > MAX_PAYLOAD) {
    throw new InvalidArgument(`stdcopy: a payload of ${payload.length} bytes does not fit in one frame`);
  }
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out[0] = stream;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  out.writeUInt32BE(payload.length, 4);
  payload.copy(out, HEADER);
  return out;
}

export interface DemuxedFrame {
  stream: StdStream;
  payload: Buffer;
}

/**
 * Splits a multiplexed byte stream back into frames. Chunks may cut anywhere, inside the
 * header or the payload; bytes are kept until their frame is whole. A payload that lies
 * entirely inside one pushed chunk is a view of that chunk, not a copy; one that spans
 * chunks is copied once into a buffer of its declared size.
 */
export class Demultiplexer {
  readonly #maxFrame: number;
  readonly #header = Buffer.alloc(HEADER);
  #headerFill = 0;
  /** The frame whose header is complete and whose payload is still arriving. */
  #current: { stream: StdStream; payload: Buffer; fill: number } | undefined;

  constructor(options: { maxFrame?: number } = {}) {
    this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  }

  /** Bytes received that do not yet make a whole frame. */
  get buffered(): number {
    return this.#current === undefined ? this.#headerFill : HEADER + this.#current.fill;
  }

  push(chunk: Buffer): DemuxedFrame[] {
    const frames: DemuxedFrame[] = [];
    let at = 0;
    while (at < chunk.length || (this.#current !== undefined && this.#current.fill === this.#current.payload.length)) {
      const current = this.#current;
      if (current === undefined) {
        if (this.#headerFill === 0 && chunk.length - at >= HEADER) {
          // The common case: header and maybe payload in this chunk, no copy.
          const stream = this.#check(chunk, at);
          const size = chunk.readUInt32BE(at + 4);
          if (chunk.length - at - HEADER >= size) {
            frames.push({ stream, payload: chunk.subarray(at + HEADER, at + HEADER + size) });
            at += HEADER + size;
            continue;
          }
          chunk.copy(this.#header, 0, at, at + HEADER);
          this.#headerFill = HEADER;
          at += HEADER;
        } else {
          const n = chunk.copy(this.#header, this.#headerFill, at, at + HEADER - this.#headerFill);
          this.#headerFill += n;
          at += n;
          if (this.#headerFill < HEADER) break;
        }
        const stream = this.#check(this.#header, 0);
        this.#current = { stream, payload: Buffer.allocUnsafe(this.#header.readUInt32BE(4)), fill: 0 };
        continue;
      }
      const n = chunk.copy(current.payload, current.fill, at);
      current.fill += n;
      at += n;
      if (current.fill === current.payload.length) {
        frames.push({ stream: current.stream, payload: current.payload });
        this.#current = undefined;
        this.#headerFill = 0;
      }
    }
    return frames;
  }

  /** Call at the end of the stream: a frame cut short is an error. */
  finish(): void {
    if (this.buffered > 0) {
      throw new InvalidArgument(`stdcopy: stream ended inside a frame (${this.buffered} bytes left over)`);
    }
  }

  /** Validates the header at buf[at..at+8] and returns its stream. */
  #check(buf: Buffer, at: number): StdStream {
    const stream = buf[at] as number;
    if (stream > StdStream.Systemerr) {
      throw new InvalidArgument(`stdcopy: unrecognized stream ${stream} in frame header`);
    }
    const size = buf.readUInt32BE(at + 4);
    if (size > this.#maxFrame) {
      throw new InvalidArgument(`stdcopy: frame of ${size} bytes exceeds the limit of ${this.#maxFrame}`);
    }
    return stream as StdStream;
  }
}
