/**
 * nbrepro's JupyterLab 4 / Notebook 7 extension.
 *
 * - `nbrepro:restart-run-all`, "Restart and Run All Reproducibly": restarts the kernel into a
 *   fresh runtime with the process-start settings (nbrepro's in-place restart, which a
 *   front-end restart cannot do: it does not reach the kernel's environment), waits until the
 *   new process answers, then runs every cell once.
 * - While the kernel has nbrepro loaded, every save writes the record into the notebook's
 *   own metadata["nbrepro"] (setting `saveRecord`).
 * - A status item: in JupyterLab's status bar, or in the notebook toolbar in Notebook 7.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  IToolbarWidgetRegistry,
  Notification,
  showErrorMessage
} from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookTracker,
  Notebook,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { JSONExt } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import {
  IReproState,
  KernelCallError,
  ReproRecord,
  fetchRecord,
  fetchState,
  firstSeedLine,
  requestRestart,
  runtimeMarker,
  sleep
} from './kernel';
import { restartRunAllIcon } from './icon';
import { StatusItem } from './status';

const PLUGIN_ID = 'nbrepro:plugin';
const COMMAND = 'nbrepro:restart-run-all';
const LABEL = 'Restart and Run All Reproducibly';
const KEY = 'nbrepro';
// How long the new process may take to answer (a loaded machine, a slow import).
const RESTART_TIMEOUT_MS = 120_000;
// How long no cell must have run before the record is asked for.
const RECORD_QUIET_MS = 1_000;

interface ISettings {
  saveRecord: boolean;
}

/** nbrepro's view of one notebook: its kernel's state and record, its saves. */
class NotebookRepro {
  constructor(
    readonly panel: NotebookPanel,
    private readonly settings: ISettings
  ) {
    panel.context.saveState.connect(this._onSave, this);
    panel.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    panel.sessionContext.statusChanged.connect(this._onStatusChanged, this);
    panel.disposed.connect(() => {
      window.clearTimeout(this._timer);
      window.clearTimeout(this._recordTimer);
      Signal.clearData(this);
    });
    this.schedule();
  }

  /** Emitted when the state or the record changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** nbrepro's state in the kernel; `null` while the kernel has not loaded nbrepro. */
  get state(): IReproState | null {
    return this._state;
  }

  /** Whether the record a save would write is as of the last cell run. */
  get recordCurrent(): boolean {
    return this._record !== null && !this._recordPending;
  }

  /** Whether "Restart and Run All Reproducibly" is under way (restart or run). */
  running = false;

  /** Whether the kernel is being replaced: nothing else is asked of it meanwhile. */
  restarting = false;

  /** Fetch the state (and the record) from the kernel once cells stop running. */
  schedule(delayMs = 250): void {
    window.clearTimeout(this._timer);
    window.clearTimeout(this._recordTimer);
    this._scheduled++;
    this._recordPending = true;
    this._changed.emit();
    this._timer = window.setTimeout(() => void this.refresh(), delayMs);
  }

  /** Forget the kernel's state: it restarted or changed. */
  clear(): void {
    this._generation++;
    this._state = null;
    this._record = null;
    this._saveWhenCurrent = false;
    this._changed.emit();
  }

  /** Resolves once no state or record request of this extension is waiting on the kernel. */
  get settled(): Promise<void> {
    return this._inFlight;
  }

  refresh(): Promise<void> {
    const done = this._inFlight.then(() => this._refresh());
    this._inFlight = done;
    return done;
  }

  private async _refresh(): Promise<void> {
    const kernel = this.panel.sessionContext.session?.kernel;
    if (this.restarting || !kernel) {
      return;
    }
    const generation = ++this._generation;
    const scheduled = this._scheduled;
    const current = () => generation === this._generation && !this.restarting;
    try {
      const info = await kernel.info;
      if (info.language_info.name !== 'python') {
        return;
      }
      const state = await fetchState(kernel);
      if (!current() || state === undefined) {
        return;
      }
      this._state = state;
      this._changed.emit();
      if (state === null || !this.settings.saveRecord) {
        this._record = null;
        this._saveWhenCurrent = false; // no record to wait for
        return;
      }
      // Building the record reads the installed packages, which keeps the kernel busy for a
      // moment: only once no cell has run for a while, so that cells run one after another
      // do not wait for it.
      this._recordTimer = window.setTimeout(() => {
        if (current() && scheduled === this._scheduled) {
          this._inFlight = this._inFlight.then(() =>
            this._fetchRecord(kernel, current, scheduled)
          );
        }
      }, RECORD_QUIET_MS);
    } catch (error) {
      console.warn('nbrepro: could not read the state from the kernel:', error);
    }
  }

  private async _fetchRecord(
    kernel: Kernel.IKernelConnection,
    current: () => boolean,
    scheduled: number
  ): Promise<void> {
    try {
      const record = await fetchRecord(kernel);
      if (current() && record !== undefined) {
        this._record = record;
        // A cell that ran while the record was being built makes it pending again.
        this._recordPending = scheduled !== this._scheduled;
        this._changed.emit();
        if (record === null) {
          this._saveWhenCurrent = false;
        } else if (this._saveWhenCurrent && !this._recordPending) {
          // A save came while the record was behind the last cell: save again, now with it,
          // unless the notebook was edited since (then the user's next save carries it).
          this._saveWhenCurrent = false;
          if (!this.panel.context.model.dirty) {
            void this.panel.context.save();
          }
        }
      }
    } catch (error) {
      console.warn('nbrepro: could not read the record from the kernel:', error);
    }
  }

  private _onSave(_: unknown, state: DocumentRegistry.SaveState): void {
    if (state === 'failed') {
      this._saveWhenCurrent = false; // JupyterLab said why; saving again would say it twice
      return;
    }
    // "started" is emitted before the model is serialized: the record set here is saved.
    if (state !== 'started' || !this.settings.saveRecord) {
      return;
    }
    if (this._recordPending) {
      // The kernel ran a cell the record does not know of yet (it is asked for once cells
      // stop running): this save carries what is known, and a second one follows as soon as
      // the record is current, so that the file never keeps a record older than its outputs.
      this._saveWhenCurrent = true;
    }
    if (this._record === null) {
      return;
    }
    const model = this.panel.content.model;
    if (!model) {
      return;
    }
    const ids = new Set<string>();
    for (let i = 0; i < model.cells.length; i++) {
      ids.add(model.cells.get(i).id);
    }
    // Seeds of cells that were deleted since they ran are not the notebook's.
    const seeds: { [id: string]: unknown } = {};
    for (const [id, seed] of Object.entries(this._record.cell_seeds ?? {})) {
      if (ids.has(id)) {
        seeds[id] = seed;
      }
    }
    const record: ReproRecord = { ...this._record, cell_seeds: seeds };
    const saved = model.getMetadata(KEY);
    if (saved === undefined || !JSONExt.deepEqual(saved as any, record)) {
      model.setMetadata(KEY, record);
    }
  }

  private _onKernelChanged(): void {
    this.clear();
    this.schedule();
  }

  private _onStatusChanged(_: unknown, status: string): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this.clear();
    }
  }

  private _changed = new Signal<this, void>(this);
  private _generation = 0;
  private _inFlight: Promise<void> = Promise.resolve();
  private _scheduled = 0;
  private _recordTimer = 0;
  private _record: ReproRecord | null = null;
  private _recordPending = true;
  private _saveWhenCurrent = false;
  private _state: IReproState | null = null;
  private _timer = 0;
}

/** Keeps a status item showing one notebook's state (`null`: none). */
class StatusBinding {
  constructor(readonly item: StatusItem) {}

  bind(repro: NotebookRepro | null): void {
    if (this._repro) {
      this._repro.changed.disconnect(this._render, this);
    }
    this._repro = repro;
    if (repro) {
      repro.changed.connect(this._render, this);
    }
    this._render();
  }

  private _render(): void {
    const repro = this._repro;
    this.item.setState(repro?.state ?? null);
    // For tests and for anyone scripting saves: the record a save writes now is current.
    this.item.node.dataset.record = repro?.recordCurrent ? 'current' : 'pending';
    this._changed.emit();
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  private _changed = new Signal<this, void>(this);
  private _repro: NotebookRepro | null = null;
}

function kernelErrorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (text.includes("No module named 'nbrepro'")) {
    return (
      "nbrepro is not installed in this kernel's environment: install it there " +
      '(pip install nbrepro) and try again'
    );
  }
  return text; // the kernel's own error, such as a module of nbrepro that failed to import
}

/** The first cell with an error output: its prompt number and error, for the message. */
function failedCell(notebook: Notebook): string {
  for (const cell of notebook.widgets) {
    const model = cell.model as any;
    if (model.type !== 'code') {
      continue;
    }
    for (let i = 0; i < model.outputs.length; i++) {
      const output = model.outputs.get(i).toJSON();
      if (output.output_type === 'error') {
        return `cell [${model.executionCount ?? ' '}] raised ${output.ename}: ${output.evalue}`;
      }
    }
  }
  return 'a cell did not run to the end';
}

/**
 * Restart `repro`'s kernel into a fresh runtime with nbrepro's process-start settings, wait
 * until the new process answers, and run every cell once.
 */
async function restartRunAll(repro: NotebookRepro): Promise<boolean> {
  const panel = repro.panel;
  const context = panel.sessionContext;
  if (repro.running) {
    // A second click while the first is still restarting or running must not cut it off.
    Notification.info(`nbrepro: "${LABEL}" is already under way`, { autoClose: 4000 });
    return false;
  }
  repro.running = true;
  repro.restarting = true;
  repro.clear();
  const note = Notification.emit(
    'nbrepro: restarting the kernel into a fresh runtime…',
    'in-progress',
    { autoClose: false }
  );
  let stage = 'restarting the kernel';
  try {
    await context.ready;
    let kernel = context.session?.kernel;
    if (!kernel) {
      throw new KernelCallError('this notebook has no kernel: select one, then try again');
    }
    // The runtime marker of the process now; a kernel that cannot answer (dead, busy with a
    // cell, stuck) is first restarted the ordinary way, as "Restart Kernel" would.
    // This extension's own state request keeps the kernel busy for a moment: not a cell.
    await Promise.race([repro.settled, sleep(10_000)]);
    let before: string | undefined;
    if (kernel.status !== 'dead' && kernel.status !== 'busy') {
      await Promise.race([kernel.info, sleep(30_000)]);
      before = await runtimeMarker(kernel, 10_000);
    }
    if (before === undefined) {
      await context.restartKernel();
      kernel = context.session?.kernel;
      if (!kernel) {
        throw new KernelCallError('the kernel did not start again');
      }
      await kernel.info;
      before = await runtimeMarker(kernel, 60_000);
      if (before === undefined) {
        throw new KernelCallError('the kernel does not answer');
      }
    }
    const sources: string[] = [];
    const model = panel.content.model;
    for (let i = 0; model && i < model.cells.length; i++) {
      const cell = model.cells.get(i);
      if (cell.type === 'code') {
        sources.push(cell.sharedModel.getSource());
      }
    }
    await requestRestart(kernel, firstSeedLine(sources));
    // The old process answers every request "aborted" until it is replaced; the new one
    // answers with a new runtime marker. No fixed delay: it works however long the start takes.
    stage = 'waiting for the new kernel process';
    const deadline = Date.now() + RESTART_TIMEOUT_MS;
    for (;;) {
      if (context.session?.kernel !== kernel || kernel.status === 'dead') {
        throw new KernelCallError('the kernel died while restarting');
      }
      const now = await runtimeMarker(kernel, 2_000);
      if (now !== undefined && now !== before) {
        break;
      }
      if (Date.now() > deadline) {
        throw new KernelCallError(
          `the kernel did not come back within ${RESTART_TIMEOUT_MS / 1000} s ` +
            "(the kernel's log says why)"
        );
      }
      await sleep(200);
    }
    stage = 'running the cells';
    Notification.update({
      id: note,
      message: 'nbrepro: fresh runtime started; running every cell…',
      type: 'in-progress',
      autoClose: false
    });
    repro.restarting = false;
    const ok = await NotebookActions.runAll(panel.content, context);
    if (context.session?.kernel?.status === 'dead') {
      throw new KernelCallError('the kernel died while running the cells');
    }
    if (!ok) {
      throw new KernelCallError(failedCell(panel.content));
    }
    Notification.update({
      id: note,
      message: 'nbrepro: every cell ran once, in a fresh runtime',
      type: 'success',
      autoClose: 5000
    });
    return true;
  } catch (error) {
    const text = kernelErrorText(error);
    console.error(`nbrepro: ${LABEL} stopped while ${stage}:`, error);
    Notification.update({
      id: note,
      message: `nbrepro: ${LABEL} stopped while ${stage}: ${text}`,
      type: 'error',
      autoClose: false
    });
    void showErrorMessage(LABEL, `Stopped while ${stage}: ${text}`);
    return false;
  } finally {
    repro.running = false;
    repro.restarting = false;
    repro.schedule();
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Restart and Run All Reproducibly, the record saved with the notebook, a status item.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, IStatusBar, IToolbarWidgetRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    statusBar: IStatusBar | null,
    toolbarRegistry: IToolbarWidgetRegistry | null
  ) => {
    const settings: ISettings = { saveRecord: true };
    const repros = new WeakMap<NotebookPanel, NotebookRepro>();
    const reproOf = (panel: NotebookPanel): NotebookRepro => {
      let repro = repros.get(panel);
      if (!repro) {
        repro = new NotebookRepro(panel, settings);
        repros.set(panel, repro);
      }
      return repro;
    };
    tracker.widgetAdded.connect((_, panel) => reproOf(panel));
    tracker.forEach(panel => reproOf(panel));
    NotebookActions.executed.connect((_, { notebook }) => {
      const panel = tracker.find(candidate => candidate.content === notebook);
      if (panel) {
        reproOf(panel).schedule();
      }
    });

    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(loaded => {
        const read = () => {
          settings.saveRecord = loaded.get('saveRecord').composite as boolean;
        };
        read();
        loaded.changed.connect(read);
      });
    }

    app.commands.addCommand(COMMAND, {
      label: LABEL,
      caption:
        'Restart the kernel into a fresh runtime with PYTHONHASHSEED=0 (and the other ' +
        "settings nbrepro's options need from process start), then run every cell once",
      icon: args => (args.toolbar ? restartRunAllIcon : undefined),
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const panel = tracker.currentWidget;
        if (!panel) {
          return false;
        }
        return restartRunAll(reproOf(panel));
      }
    });
    palette?.addItem({ command: COMMAND, category: 'Kernel Operations' });

    // JupyterLab: the status bar follows the current notebook. Notebook 7 has no status bar:
    // the item goes into each notebook's toolbar instead.
    if (statusBar) {
      const binding = new StatusBinding(new StatusItem());
      const follow = () => {
        const panel = tracker.currentWidget;
        binding.bind(panel ? reproOf(panel) : null);
      };
      tracker.currentChanged.connect(follow);
      follow();
      statusBar.registerStatusItem(PLUGIN_ID + ':status', {
        item: binding.item,
        align: 'left',
        rank: 4,
        isActive: () => binding.item.hasContent,
        activeStateChanged: binding.changed
      });
    }
    toolbarRegistry?.addFactory<NotebookPanel>('Notebook', 'nbrepro-status', panel => {
      if (statusBar) {
        return new Widget(); // JupyterLab shows it in the status bar
      }
      const binding = new StatusBinding(new StatusItem());
      binding.bind(reproOf(panel));
      return binding.item;
    });
  }
};

export default plugin;
