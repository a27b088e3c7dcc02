// The nbrepro status panel: what %repro_status shows in JupyterLab, Notebook 7, VS Code and
// Colab. anywidget (0.9 and later) renders it from the `status` trait that
// nbrepro/_widget.py keeps up to date after every cell: Status.to_dict() in nbrepro/_status.py.
//
// Plain ES module, no build step: the Python package ships this very file
// (nbrepro/_static/ links here). Text only ever enters the page through DOM text nodes:
// finding messages quote the user's code, paths and settings.

const NO_SEED = "no experiment seed yet";

/** An element with a class and children (strings become text nodes; null/false are skipped). */
function h(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** The word for a framework's state, and the class that colours its dot. */
function frameworkState(framework) {
  const imported = framework.version !== null;
  if (imported) return framework.seeded ? ["seeded", "ok"] : ["not seeded", "bad"];
  return framework.seeded ? ["seeded on import", "ok"] : ["not imported", "idle"];
}

function header(status) {
  const counts = {};
  for (const finding of status.findings) {
    counts[finding.severity] = (counts[finding.severity] ?? 0) + 1;
  }
  const tally = ["error", "warning", "info"]
    .filter((severity) => counts[severity])
    .map((severity) => `${counts[severity]} ${severity}${counts[severity] > 1 ? "s" : ""}`);
  const verdict =
    status.findings.length === 0
      ? h("span", "nbrepro-verdict nbrepro-verdict-ok", "no findings")
      : h("span", "nbrepro-verdict", tally.join(", "));
  let seed;
  if (status.seed === null) {
    seed = [h("span", "nbrepro-seed nbrepro-seed-none", NO_SEED), h("code", "", "%repro_seed")];
  } else {
    const how = status.seed_source === "user" ? "given" : "auto-assigned";
    seed = [
      h("span", "nbrepro-label", "seed"),
      h("span", "nbrepro-seed", String(status.seed)),
      h("span", `nbrepro-tag nbrepro-source-${status.seed_source}`, how),
    ];
  }
  return h("div", "nbrepro-header", h("span", "nbrepro-title", "nbrepro"), ...seed, verdict);
}

function row(label, ...content) {
  return [h("dt", "", label), h("dd", "", ...content)];
}

function frameworks(status) {
  const chips = status.frameworks.map((framework) => {
    const [state, tone] = frameworkState(framework);
    return h(
      "span",
      `nbrepro-chip nbrepro-${tone}`,
      h("span", "nbrepro-dot"),
      h("span", "nbrepro-name", framework.name),
      framework.version !== null && h("span", "nbrepro-version", framework.version),
      h("span", "nbrepro-state", state),
    );
  });
  return row("Frameworks", h("div", "nbrepro-chips", ...chips));
}

function setting(name, value, on) {
  return h("span", `nbrepro-chip ${on ? "nbrepro-on" : ""}`, `${name}: `, h("b", "", value));
}

function determinism(status) {
  return row(
    "Determinism",
    h(
      "div",
      "nbrepro-chips",
      setting("deterministic", status.deterministic, status.deterministic !== "off"),
      setting("per-cell", status.per_cell ? "on" : "off", status.per_cell),
      setting("threads", status.threads === null ? "default" : String(status.threads), status.threads !== null),
    ),
  );
}

function cellSeed(status) {
  if (!status.per_cell) return [];
  const cell = status.last_cell;
  if (cell === null) return row("Cell seed", h("span", "nbrepro-muted", "set when the next cell runs"));
  // `cell` is the id the front end sent, or "source:<sha256 prefix>" where it sent none.
  return row(
    "Cell seed",
    h("span", "nbrepro-cell-seed", String(cell.seed)),
    " ",
    h("span", "nbrepro-muted nbrepro-cell-key", `cell ${cell.cell}`),
  );
}

function unseeded(status) {
  if (!status.unseeded_generators) return [];
  return row(
    "Generators",
    `${status.unseeded_generators} created without a seed, seeded from the experiment's stream`,
  );
}

function findings(status) {
  if (status.findings.length === 0) {
    return h("div", "nbrepro-findings nbrepro-none", "Nothing left to fix that nbrepro can see.");
  }
  // Already most severe first: Status.findings is ordered so.
  const items = status.findings.map((finding) =>
    h(
      "li",
      `nbrepro-finding nbrepro-${finding.severity}`,
      h(
        "div",
        "nbrepro-finding-head",
        h("span", `nbrepro-badge nbrepro-badge-${finding.severity}`, finding.severity),
        h("code", "nbrepro-code", finding.code),
        h("span", "nbrepro-message", finding.message),
      ),
      h("div", "nbrepro-fix", h("span", "nbrepro-fix-label", "Fix"), h("span", "", finding.fix)),
    ),
  );
  return h("ol", "nbrepro-findings", ...items);
}

function view(status) {
  const settings = h(
    "dl",
    "nbrepro-settings",
    ...frameworks(status),
    ...determinism(status),
    ...cellSeed(status),
    ...unseeded(status),
  );
  return [header(status), settings, findings(status)];
}

function render({ model, el }) {
  const root = h("div", "nbrepro-status");
  el.append(root);
  const draw = () => root.replaceChildren(...view(model.get("status")));
  draw();
  model.on("change:status", draw);
  // anywidget calls this when the view goes away (0.9 and later).
  return () => model.off("change:status", draw);
}

export default { render };
