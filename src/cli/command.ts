/** What every CLI command is: a spec (usage, flags) and a function that runs it. */
import type { EngineClient } from '../client/engine-client.js';
import type { CommandSpec } from './args.js';

export interface CliContext {
  /** Made on first use, so commands that need no daemon never load the client. */
  readonly client: EngineClient;
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  spec: CommandSpec;
  /** Returns the exit status. `path` is how the user named it ('images', 'image ls'). */
  run(ctx: CliContext, argv: string[], path: string): Promise<number>;
  /** The exit status for an error from the daemon: 1, or 125 for run/create. */
  daemonErrorExit?: number;
}

/** An error that carries the exit status the CLI should end with. */
export class ExitError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The text of a daemon's refusal, as the docker CLI prints it. */
export function daemonError(err: { message: string }): string {
  return `Error response from daemon: ${err.message}`;
}
