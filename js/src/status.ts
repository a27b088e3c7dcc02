/**
 * The status item: "seed 42 · 1 error · 2 warnings", in JupyterLab's status bar or, in
 * Notebook 7 (which has none), in the notebook toolbar. Empty while the kernel has not
 * loaded nbrepro; a click shows the %repro_status summary. `setState(null)` empties it.
 */
import { Dialog, Sanitizer, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IReproState } from './kernel';

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The item's parts: the seed, then the finding counts that are not zero. */
export function describe(state: IReproState): { text: string; kind: string }[] {
  const parts = [
    { text: state.seed === null ? 'nbrepro: no seed' : `seed ${state.seed}`, kind: 'seed' }
  ];
  if (state.errors) {
    parts.push({ text: plural(state.errors, 'error'), kind: 'errors' });
  }
  if (state.warnings) {
    parts.push({ text: plural(state.warnings, 'warning'), kind: 'warnings' });
  }
  return parts;
}

const sanitizer = new Sanitizer();

/** Show `state`'s summary (the kernel's escaped HTML, sanitized again) in a dialog. */
export function showSummary(state: IReproState): void {
  const body = new Widget();
  body.addClass('nbrepro-Summary');
  body.node.innerHTML = sanitizer.sanitize(state.html);
  void showDialog({
    title: 'nbrepro',
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

/** One status item. */
export class StatusItem extends Widget {
  constructor() {
    super();
    this.addClass('nbrepro-StatusItem');
    this.addClass('nbrepro-mod-empty');
    this.node.title = 'nbrepro: click for the seed, the options and the findings';
    this.node.addEventListener('click', () => {
      if (this._state) {
        showSummary(this._state);
      }
    });
  }

  /** Whether it shows anything (the kernel has nbrepro loaded). */
  get hasContent(): boolean {
    return this._state !== null;
  }

  setState(state: IReproState | null): void {
    this._state = state;
    this.node.textContent = '';
    this.toggleClass('nbrepro-mod-empty', state === null);
    if (state === null) {
      return;
    }
    describe(state).forEach((part, index) => {
      if (index) {
        // No-break spaces: the status bar's flex layout drops plain spaces between items.
        this.node.appendChild(document.createTextNode('\u00a0·\u00a0'));
      }
      const span = document.createElement('span');
      span.className = `nbrepro-${part.kind}`;
      span.textContent = part.text;
      this.node.appendChild(span);
    });
  }

  private _state: IReproState | null = null;
}
