/** The command's toolbar icon: a restart arrow around a run triangle, in the theme's colour. */
import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 5V1.5L7.5 6l4.5 4.5V7a6 6 0 1 1-6 6H4a8 8 0 1 0 8-8z"/>
    <path d="M10 10v6l5-3z"/>
  </g>
</svg>`;

export const restartRunAllIcon = new LabIcon({ name: 'nbrepro:restart-run-all', svgstr });
