/**
 * Talking to the kernel: silent execute requests whose user expressions call
 * nbrepro._frontend (no prompt number, no history, no cell hooks run).
 */
import { Kernel, KernelMessage } from '@jupyterlab/services';

/** A kernel-side error, with the text to show the user. */
export class KernelCallError extends Error {}

/** The status-bar content nbrepro._frontend.state() returns. */
export interface IReproState {
  seed: number | null;
  seed_source: string | null;
  deterministic: string;
  per_cell: boolean;
  errors: number;
  warnings: number;
  infos: number;
  html: string;
}

/** The record nbrepro._frontend.record() returns: metadata["nbrepro"]. */
export type ReproRecord = { [key: string]: any };

// Imports nothing into a kernel that has not imported nbrepro itself: the answer is then
// None, which has no JSON representation.
const IF_LOADED = (call: string) =>
  `(__import__('nbrepro._frontend', fromlist=['_']).Json(` +
  `__import__('nbrepro._frontend', fromlist=['_']).${call}()) ` +
  `if 'nbrepro' in __import__('sys').modules else None)`;

// A JSON string is a Python string literal too (JSON.stringify never writes "\/").
const RESTART = (seedLine: string | null) =>
  "__import__('nbrepro._frontend', fromlist=['_']).Json(" +
  "__import__('nbrepro._frontend', fromlist=['_']).restart(" +
  `${seedLine === null ? 'None' : JSON.stringify(seedLine)}))`;

// What tells the new process from the old one: nbrepro's restart puts a new runtime record
// (when, by whom) into the new process's environment.
const RUNTIME = "__import__('os').environ.get('NBREPRO_RUNTIME', '')";

/** Resolves to `undefined` after `ms` milliseconds. */
export function sleep(ms: number): Promise<undefined> {
  return new Promise(resolve => setTimeout(() => resolve(undefined), ms));
}

/**
 * A silent execute request evaluating `expressions`; its reply, or `undefined` when none came
 * within `timeoutMs` (a kernel replacing its process loses requests sent meanwhile).
 */
export async function silentExecute(
  kernel: Kernel.IKernelConnection,
  expressions: { [name: string]: string },
  timeoutMs: number
): Promise<KernelMessage.IExecuteReplyMsg | undefined> {
  const future = kernel.requestExecute(
    {
      code: '',
      silent: true,
      store_history: false,
      allow_stdin: false,
      stop_on_error: false,
      user_expressions: expressions
    },
    true
  );
  try {
    return await Promise.race([future.done, sleep(timeoutMs)]);
  } catch {
    return undefined; // the future was disposed: the kernel restarted or died
  } finally {
    if (!future.isDisposed) {
      future.dispose();
    }
  }
}

/** One user expression's value: its JSON, or its text; a KernelCallError if it raised. */
function expressionValue(
  reply: KernelMessage.IExecuteReplyMsg,
  name: string
): { json?: any; text?: string } {
  const content = reply.content as any;
  if (content.status !== 'ok') {
    throw new KernelCallError(`the kernel answered "${content.status}"`);
  }
  const value = content.user_expressions?.[name];
  if (!value) {
    throw new KernelCallError('the kernel gave no answer');
  }
  if (value.status !== 'ok') {
    throw new KernelCallError(`${value.ename}: ${value.evalue}`);
  }
  return { json: value.data?.['application/json'], text: value.data?.['text/plain'] };
}

/** nbrepro's state in the kernel; `null` when the kernel has not imported nbrepro. */
export async function fetchState(
  kernel: Kernel.IKernelConnection
): Promise<IReproState | null | undefined> {
  const reply = await silentExecute(kernel, { state: IF_LOADED('state') }, 30_000);
  if (!reply) {
    return undefined;
  }
  const value = expressionValue(reply, 'state');
  return (value.json as IReproState | undefined) ?? null;
}

/** The record now; `null` when the kernel has not imported nbrepro. */
export async function fetchRecord(
  kernel: Kernel.IKernelConnection
): Promise<ReproRecord | null | undefined> {
  const reply = await silentExecute(kernel, { record: IF_LOADED('record') }, 60_000);
  if (!reply) {
    return undefined;
  }
  return (expressionValue(reply, 'record').json as ReproRecord | undefined) ?? null;
}

/** The kernel's NBREPRO_RUNTIME (Python's repr of it); `undefined` if it did not answer. */
export async function runtimeMarker(
  kernel: Kernel.IKernelConnection,
  timeoutMs: number
): Promise<string | undefined> {
  const reply = await silentExecute(kernel, { runtime: RUNTIME }, timeoutMs);
  if (!reply || (reply.content as any).status !== 'ok') {
    return undefined; // no reply, or "aborted" by a process about to be replaced
  }
  return expressionValue(reply, 'runtime').text;
}

/**
 * Ask the kernel to replace its process with a fresh one started with the process-start
 * settings (nbrepro's in-place restart); the message it gives. The restart happens once this
 * request has replied. `seedLine`, the notebook's first `%repro_seed` line, gives the
 * settings to a kernel that has not run it yet (`--threads`, `--deterministic`).
 */
export async function requestRestart(
  kernel: Kernel.IKernelConnection,
  seedLine: string | null = null
): Promise<string> {
  const reply = await silentExecute(kernel, { restart: RESTART(seedLine) }, 30_000);
  if (!reply) {
    throw new KernelCallError('the kernel did not answer the restart request');
  }
  const value = expressionValue(reply, 'restart');
  if (!value.json) {
    throw new KernelCallError(value.text ?? 'the kernel gave no answer');
  }
  return String(value.json.message);
}

/** The first `%repro_seed` line of the code cells' sources, without the magic's name. */
export function firstSeedLine(sources: string[]): string | null {
  for (const source of sources) {
    for (const line of source.split('\n')) {
      const match = /^\s*%repro_seed(?:\s+(.*))?$/.exec(line);
      if (match) {
        return (match[1] ?? '').trim();
      }
    }
  }
  return null;
}
