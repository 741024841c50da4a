/**
 * What the command says on stderr (stdout belongs to the command it runs, and to `status`/`observe`):
 * one line per event, as text or — with `--json` — as a JSON object. `--quiet` keeps only errors.
 * Lines go through output.ts: a reader that went away never ends leasehold.
 */

import { exitCodeOf } from './exit-codes.js';
import { stderr } from './output.js';

/** How the CLI reports. */
export interface ReportFlags {
  json?: boolean;
  quiet?: boolean;
}

/** JSON for values leasehold returns: bigints become decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export class Reporter {
  readonly #flags: ReportFlags;
  readonly #write: (line: string) => void;

  constructor(flags: ReportFlags, write: (line: string) => void = (line) => stderr.line(line)) {
    this.#flags = flags;
    this.#write = write;
  }

  /** An event worth a line (acquired, released, lost): skipped with `--quiet`. */
  info(event: string, text: string, fields: Record<string, unknown> = {}): void {
    if (this.#flags.quiet) return;
    this.#line(event, text, fields);
  }

  /** An error: always reported. */
  error(event: string, text: string, fields: Record<string, unknown> = {}): void {
    this.#line(event, text, fields);
  }

  /** An error that ends the command: reported (with its exit code); returns that code. */
  failure(error: unknown, fields: Record<string, unknown>): number {
    const code = exitCodeOf(error);
    this.error('error', error instanceof Error ? error.message : String(error), { ...fields, code });
    return code;
  }

  #line(event: string, text: string, fields: Record<string, unknown>): void {
    this.#write(this.#flags.json ? toJson({ event, ...fields, message: text }) : `leasehold: ${text}`);
  }
}
