// The nbrepro status panel: what %repro_status shows in JupyterLab, Notebook 7, VS Code and
// Colab. anywidget (0.9 and later) renders it from the `status` trait that
// nbrepro/_widget.py keeps up to date after every cell: Status.to_dict() in nbrepro/_status.py.
//
// Plain ES module, no build step: the Python package ships this very file
// (nbrepro/_static/ links here). Text only ever enters the page through DOM text nodes:
// finding messages quote the user's code, paths and settings. Only divs and spans: host pages
// style other elements (JupyterLab's rendered-HTML rules for dl, ol, code, ...).

/** A div or span with classes and children (strings become text; null and false are skipped). */
function h(tag, className, ...children) {
  const node = document.createElement(tag);
  node.className = className;
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** The words for a framework's state (as nbrepro._panel.framework_state), and its dot's tone. */
function frameworkState(framework) {
  if (framework.version !== null) {
    return framework.seeded ? ["seeded", "ok"] : ["not seeded", "bad"];
  }
  return framework.seeded ? ["seeded on import", "ok"] : ["not imported", "idle"];
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function header(status) {
  const counts = { error: 0, warning: 0, info: 0 };
  for (const finding of status.findings) counts[finding.severity] += 1;
  const tally = Object.entries(counts)
    .filter(([, count]) => count > 0)
    .map(([severity, count]) => plural(count, severity));
  const verdict =
    tally.length === 0
      ? h("span", "nbrepro-verdict nbrepro-verdict-ok", "no findings")
      : h("span", "nbrepro-verdict", tally.join(", "));
  let seed;
  if (status.seed === null) {
    seed = [
      h("span", "nbrepro-seed-none", "no experiment seed yet"),
      h("span", "nbrepro-muted", "run"),
      h("span", "nbrepro-mono", "%repro_seed"),
    ];
  } else {
    seed = [
      h("span", "nbrepro-muted", "seed"),
      h("span", "nbrepro-seed", String(status.seed)),
      h(
        "span",
        `nbrepro-tag nbrepro-source-${status.seed_source}`,
        { user: "given", sweep: "from nbrepro sweep" }[status.seed_source] || "auto-assigned",
      ),
    ];
  }
  return h("div", "nbrepro-header", h("span", "nbrepro-title", "nbrepro"), ...seed, verdict);
}

function row(label, ...content) {
  return [h("div", "nbrepro-key", label), h("div", "nbrepro-value", ...content)];
}

function frameworks(status) {
  const chips = status.frameworks.map((framework) => {
    const [state, tone] = frameworkState(framework);
    return h(
      "span",
      `nbrepro-chip nbrepro-${tone}`,
      h("span", "nbrepro-dot"),
      h("span", "nbrepro-name", framework.name),
      framework.version !== null && h("span", "nbrepro-muted", framework.version),
      h("span", "nbrepro-state", state),
    );
  });
  return row("Frameworks", h("div", "nbrepro-chips", ...chips));
}

function setting(name, value, on) {
  const className = on ? "nbrepro-chip nbrepro-on" : "nbrepro-chip";
  return h("span", className, `${name}:`, h("span", "nbrepro-strong", value));
}

function determinism(status) {
  const threads = status.threads === null ? "default" : String(status.threads);
  return row(
    "Determinism",
    h(
      "div",
      "nbrepro-chips",
      setting("deterministic", status.deterministic, status.deterministic !== "off"),
      setting("per-cell", status.per_cell ? "on" : "off", status.per_cell),
      setting("threads", threads, status.threads !== null),
    ),
  );
}

function cellSeed(status) {
  if (!status.per_cell) return [];
  const cell = status.last_cell;
  if (cell === null) {
    return row("Cell seed", h("span", "nbrepro-muted", "drawn when the next cell runs"));
  }
  // `cell` is the id the front end sent, or "source:<sha256 prefix>" where it sent none.
  return row(
    "Cell seed",
    h("span", "nbrepro-cell-seed", String(cell.seed)),
    h("span", "nbrepro-muted nbrepro-mono nbrepro-cell", `cell ${cell.cell}`),
  );
}

function runtime(status) {
  const started = status.runtime;
  if (!started) return [];
  const settings = Object.entries(started.settings).map(([name, value]) =>
    h("span", "nbrepro-chip nbrepro-mono", `${name}=${value}`),
  );
  return row(
    "Runtime",
    `started by ${started.started_by}`,
    settings.length > 0
      ? h("div", "nbrepro-chips", ...settings)
      : h("span", "nbrepro-muted", "without process-start settings"),
  );
}

function unseeded(status) {
  const libraries = status.library_generators || 0;
  if (!status.unseeded_generators && !libraries) return [];
  const count = plural(status.unseeded_generators, "generator");
  const inside = libraries ? ` (+${libraries} inside libraries)` : "";
  return row(
    "Unseeded",
    `${count}${inside} created without a seed, seeded from the experiment's stream`,
  );
}

function findings(status) {
  if (status.findings.length === 0) {
    return h("div", "nbrepro-no-findings", "Nothing left to fix that nbrepro can see.");
  }
  // Already most severe first: Status.findings is ordered so.
  const items = status.findings.map((finding) =>
    h(
      "div",
      `nbrepro-finding nbrepro-finding-${finding.severity}`,
      h(
        "div",
        "nbrepro-finding-head",
        h("span", `nbrepro-badge nbrepro-badge-${finding.severity}`, finding.severity),
        h("span", "nbrepro-code", finding.code),
        h("span", "nbrepro-message", finding.message),
      ),
      h("div", "nbrepro-fix", h("span", "nbrepro-fix-label", "Fix:"), h("span", "", finding.fix)),
    ),
  );
  return h("div", "nbrepro-findings", ...items);
}

function view(status) {
  const settings = h(
    "div",
    "nbrepro-settings",
    ...frameworks(status),
    ...determinism(status),
    ...cellSeed(status),
    ...runtime(status),
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
