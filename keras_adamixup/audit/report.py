"""`AuditReport`: the result of an audit, readable, comparable and archivable."""

import dataclasses
import datetime
import json
import os

from keras_adamixup import _io
from keras_adamixup.audit import roc

SCHEMA_VERSION = 1


def _figure(**kwargs):
    """A Figure of its own, without pyplot: the caller's backend and figures stay as they are."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)
_METRICS = ("auc", "advantage", "ppv") + tuple(roc.tpr_key(t) for t in roc.LOW_FPRS)


@dataclasses.dataclass
class AuditReport:
    """Membership-inference audit of one model on one member/non-member split.

    Attributes:
        name: the audited model's name.
        utility: train/test accuracy and loss and the generalization gap
            (``train_accuracy − test_accuracy``), computed from the same
            outputs the attacks see.
        attacks: one dict per (attack, slice): ``attack``, ``slice``,
            ``source`` (``tf_privacy``, ``trained_fast``, ``score``, ``lira``,
            ``lira_hinge``, ``rmia``, ``label_only``, or a registered shadow
            attack's name), ``auc``,
            ``advantage``, ``ppv``, ``tpr_at_<fpr>_fpr`` for each of
            `roc.LOW_FPRS` (``tpr_at_0.001_fpr``, ``tpr_at_0.01_fpr``),
            ``n_members``, ``n_nonmembers`` and, for entire-data-set rows,
            ``roc`` (down-sampled ``fpr``/``tpr``).
        histograms: membership-score histograms per attack (entire data set).
        metadata: how the audit ran (split, output kind, versions, seconds).
        schema_version: JSON schema version.

    Example:

    ```python
    report = keras_adamixup.audit.run_audit(model, (x_in, y_in), (x_out, y_out))
    print(report.summary())
    report.save("audit/")            # report.json, report.md, roc.png, histograms.png
    again = AuditReport.from_json("audit/report.json")
    ```
    """

    name: str
    utility: dict
    attacks: list
    histograms: dict = dataclasses.field(default_factory=dict)
    metadata: dict = dataclasses.field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # -- headline ---------------------------------------------------------------

    def rows(self, slice_name=None):
        return [r for r in self.attacks if slice_name is None or r["slice"] == slice_name]

    def best(self, metric="auc", slice_name="entire"):
        """The strongest attack row by `metric` (entire data set by default; `None`: any slice)."""
        rows = self.rows(slice_name)
        if not rows:
            raise ValueError(f"The report has no attack results for slice {slice_name!r}.")
        return max(rows, key=lambda r: r[metric])

    def headline(self):
        """Key numbers: accuracy, best AUC, best TPR at low FPR, worst slice.

        ``worst_slice_significant`` says whether the worst slice's AUC stands
        out from chance after a Bonferroni correction for the number of
        (attack, slice) results tested (two-sided, 5 %); when it does not,
        it is within the noise of testing that many small slices.
        """
        best = self.best("auc")
        worst_slice = self.best("auc", slice_name=None)
        tested = max(len(self.attacks), 1)
        z = roc.auc_null_z(worst_slice["auc"], worst_slice["n_members"],
                           worst_slice["n_nonmembers"])
        from scipy import stats

        p_value = float(2.0 * stats.norm.sf(abs(z)))
        headline = {
            "train_accuracy": self.utility["train_accuracy"],
            "test_accuracy": self.utility["test_accuracy"],
            "generalization_gap": self.utility["generalization_gap"],
            "best_auc": best["auc"],
            "best_auc_attack": best["attack"],
            "best_advantage": self.best("advantage")["advantage"],
        }
        for t in roc.LOW_FPRS:
            key = roc.tpr_key(t)
            row = self.best(key)
            headline["best_" + key] = row[key]
            headline["best_" + key + "_measurable"] = row.get(key + "_measurable", True)
        headline.update({
            "worst_slice_auc": worst_slice["auc"],
            "worst_slice": f"{worst_slice['attack']} on {worst_slice['slice']}",
            "best_auc_ci": best.get("auc_ci"),
            "worst_slice_p_value": p_value,
            "worst_slice_significant": bool(p_value * tested < 0.05),
            "results_tested": tested,
        })
        recipes = self.metadata.get("lira")
        recipes = [recipes] if isinstance(recipes, dict) else list(recipes or [])
        if recipes:
            headline["min_shadows"] = min(r["num_shadows"] for r in recipes)
        kinds = (self.metadata.get("canaries") or {}).get("kinds_measured") or {}
        measured = {k: e["epsilon"] for k, e in kinds.items() if e.get("epsilon")}
        if measured:
            kind = max(measured, key=lambda k: measured[k]["one_run"])
            headline["canary_epsilon"] = measured[kind]["one_run"]
            headline["canary_epsilon_kind"] = kind
            headline["canary_epsilon_measurable"] = all(
                kinds[k].get("measurable", True) for k in measured)
            low = roc.tpr_key(roc.LOW_FPRS[0])
            for k, entry in kinds.items():
                if entry["attacks"]:  # the strongest attack on this kind, per metric
                    headline[f"canary_{k}_auc"] = max(r["auc"] for r in entry["attacks"].values())
                    headline[f"canary_{k}_{low}"] = max(r[low] for r in entry["attacks"].values())
        return headline

    # -- text -----------------------------------------------------------------

    def _table(self, rows):
        tprs = "".join(f" TPR@{roc.fpr_label(t)}FPR [95 % CI] |" for t in roc.LOW_FPRS)
        head = f"| attack | slice | AUC [95 % CI] | advantage | PPV |{tprs} members | non-members |"
        lines = [head, "|" + "---|" * (7 + len(roc.LOW_FPRS))]
        for r in rows:
            cells = "".join(f" {_tpr_text(r, t)} |" for t in roc.LOW_FPRS)
            lines.append(
                f"| {r['attack']} | {r['slice']} | {_auc_text(r)} | {r['advantage']:.4f} | "
                f"{r['ppv']:.4f} |{cells} {r['n_members']} | {r['n_nonmembers']} |"
            )
        notes = sorted({f"{t:g}" for r in rows for t in roc.LOW_FPRS
                        if not r.get(roc.tpr_key(t) + "_measurable", True)})
        if notes:
            lines.append("")
            lines.append(
                "† TPR at an FPR below 1/(non-members) is TPR at zero false positives: "
                "it cannot be measured at that FPR with so few non-members.")
        return "\n".join(lines)

    def _headline_lines(self):
        """The strongest attack and the worst slice, with intervals and caveats."""
        h = self.headline()
        best = self.best("auc")
        tpr = {t: self.best(roc.tpr_key(t)) for t in roc.LOW_FPRS}
        if h.get("worst_slice_significant", True):
            noise = f"stands out from chance (p = {h.get('worst_slice_p_value', 0):.2g})"
        else:
            noise = (f"within the noise of testing {h['results_tested']} (attack, slice) "
                     f"results (p = {h['worst_slice_p_value']:.2g} before correction)")
        return [
            f"strongest attack: {h['best_auc_attack']} AUC {_auc_text(best)}; best "
            + ", ".join(f"TPR@{roc.fpr_label(t)}FPR {_tpr_text(tpr[t], t)}"
                        for t in roc.LOW_FPRS),
            f"worst slice: {h['worst_slice']} AUC {h['worst_slice_auc']:.4f}, {noise}",
        ]

    def summary(self, slices=False):
        """A text summary: utility, headline and the entire-data-set table."""
        u = self.utility
        lines = [
            f"Membership-inference audit of {self.name!r}",
            f"  accuracy train {u['train_accuracy']:.4f}  test {u['test_accuracy']:.4f}  "
            f"gap {u['generalization_gap']:.4f}  (loss train {u['train_loss']:.4f}, "
            f"test {u['test_loss']:.4f})",
            *("  " + line for line in self._headline_lines()),
            "",
            self._table(self.rows(None if slices else "entire")),
        ]
        return "\n".join(lines)

    def to_markdown(self, path=None):
        """Markdown with the headline, utility and every row; written if `path`."""
        u = self.utility
        meta = self.metadata
        text = "\n".join([
            f"# Membership-inference audit: {self.name}",
            "",
            f"- train accuracy {u['train_accuracy']:.4f}, test accuracy "
            f"{u['test_accuracy']:.4f}, generalization gap {u['generalization_gap']:.4f}",
            *("- " + line for line in self._headline_lines()),
            f"- model outputs read as: {meta.get('output_kind', '?')}"
            + (f" (decided by: {meta['output_kind_evidence']})"
               if "output_kind_evidence" in meta else "") + "; members "
            f"{meta.get('n_members', '?')}, non-members {meta.get('n_nonmembers', '?')}",
            f"- audit time: {meta.get('seconds', float('nan')):.1f} s",
            *_shadow_lines(meta),
            "",
            "## Entire data set",
            "",
            self._table(self.rows("entire")),
            "",
            "## Slices",
            "",
            self._table([r for r in self.attacks if r["slice"] != "entire"]),
            "",
        ] + ([f"Skipped slices (too few examples): {', '.join(meta['skipped_slices'])}", ""]
             if meta.get("skipped_slices") else []) + _exposure_lines(meta)
            + _canary_lines(meta))
        if path is not None:
            _io.write_text(path, text)
        return text

    # -- JSON ------------------------------------------------------------------

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self, path=None):
        """JSON text (schema `SCHEMA_VERSION`); written atomically if `path`."""
        text = json.dumps(self.to_dict(), indent=1, default=float)
        if path is not None:
            _io.write_text(path, text)
        return text

    @classmethod
    def from_dict(cls, data):
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"Audit report schema version {version!r} is not supported "
                f"(this version reads {SCHEMA_VERSION})."
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    @classmethod
    def from_json(cls, path_or_text):
        """Loads a report from a path or a JSON string."""
        text = path_or_text
        if isinstance(text, os.PathLike) or not str(text).lstrip().startswith("{"):
            with open(path_or_text, encoding="utf-8") as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    # -- plots -----------------------------------------------------------------

    def plot_roc(self, path=None, ax=None, label_prefix=""):
        """ROC curves of the entire-data-set attacks on log-log axes."""
        own = ax is None
        if own:
            fig = _figure(figsize=(6, 5))
            ax = fig.subplots()
        low = _low_fpr(self.rows("entire"))  # the log axes start at FPR = 1/n
        for r in self.rows("entire"):
            if "roc" not in r:
                continue
            ax.plot(_floor(r["roc"]["fpr"], low), _floor(r["roc"]["tpr"], low),
                    label=f"{label_prefix}{r['attack']} (AUC {r['auc']:.3f})")
        _style_roc(ax, low)
        if own:
            fig.tight_layout()
            if path is not None:
                with _io.atomic_path(path) as tmp:
                    fig.savefig(tmp, dpi=110, format="png")
        return ax

    def plot_histograms(self, path):
        """Histograms of member vs non-member scores, one panel per attack."""
        names = sorted(self.histograms)
        if not names:
            return None
        cols = min(3, len(names))
        rows = (len(names) + cols - 1) // cols
        fig = _figure(figsize=(4 * cols, 3 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, name in zip(axes.flat, names):
            h = self.histograms[name]
            # one filled step patch per side (a bar per bin made saving take seconds)
            ax.stairs(h["nonmembers"], h["edges"], fill=True, alpha=0.5, label="non-members")
            ax.stairs(h["members"], h["edges"], fill=True, alpha=0.5, label="members")
            ax.set_title(name, fontsize=9)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=8)
        inch = 1 / (3 * rows)  # one inch of the figure's height
        fig.suptitle(f"Membership scores: {self.name}", fontsize=10, y=1 - 0.15 * inch)
        # fixed margins: tight_layout over dozens of panels took seconds
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.4 * inch, top=1 - 0.75 * inch,
                            hspace=0.45, wspace=0.25)
        with _io.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        return path

    def save(self, folder):
        """Writes report.json, report.md, roc.png and histograms.png into `folder`."""
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise FileExistsError(f"report.save({folder!r}): that is a file; `folder` is a "
                                  "folder the report's files are written into.")
        os.makedirs(folder, exist_ok=True)
        paths = {
            "json": os.path.join(folder, "report.json"),
            "markdown": os.path.join(folder, "report.md"),
            "roc": os.path.join(folder, "roc.png"),
            "histograms": os.path.join(folder, "histograms.png"),
        }
        self.to_json(paths["json"])
        self.to_markdown(paths["markdown"])
        self.plot_roc(paths["roc"])
        if not self.plot_histograms(paths["histograms"]):
            del paths["histograms"]
        return paths


def _canary_lines(meta):
    """Markdown: the attacks on planted canaries, in vs out, per kind, with ε."""
    canaries = meta.get("canaries")
    if not canaries or "kinds_measured" not in canaries:
        return []
    lines = [f"## Canaries ({canaries['units']} units, seed {canaries['seed']})", "",
             "Each canary was in the training set with probability 1/2; attacks score "
             "canaries that were in against canaries that were out († at 0 false "
             "positives: too few out-canaries for that FPR). ε: lower bounds at δ = "
             "1e-5, 95 % confidence, per canary unit: one-run (Steinke et al. 2023) and "
             "Clopper–Pearson on the ROC (TF Privacy's method).", ""]
    for kind, entry in canaries["kinds_measured"].items():
        lines += [f"### {kind}: {entry['units']} units ({entry['in']} in, {entry['out']} out)",
                  ""]
        if not entry.get("measurable", True):
            lines += [f"Fewer than {canaries_min_units()} units, or too few on one side: "
                      "the numbers below are not a measurement of a low FPR or of ε.", ""]
        if not entry["attacks"]:
            lines += ["All units on one side: nothing to compare.", ""]
            continue
        lines += ["| attack | AUC |" + "".join(f" TPR@{roc.fpr_label(t)}FPR [95 % CI] |"
                                              for t in roc.LOW_FPRS)
                  + " ε one-run | ε ROC |",
                  "|---|---|" + "---|" * (len(roc.LOW_FPRS) + 2)]
        for attack, row in entry["attacks"].items():
            cells = []
            for t in roc.LOW_FPRS:
                key = roc.tpr_key(t)
                low, high = row[key + "_ci"]
                mark = "" if row[key + "_measurable"] else "†"
                cells.append(f"{row[key]:.3f}{mark} [{low:.3f}, {high:.3f}]")
            best = " **(best AUC)**" if attack == entry.get("best_attack") else ""
            lines.append(f"| {attack}{best} | {row['auc']:.3f} | " + " | ".join(cells)
                         + f" | {row['epsilon_one_run']:.2f} | {row['epsilon_roc']:.2f} |")
        eps = entry.get("epsilon")
        if eps:
            lines += ["", f"Largest ε: one-run {eps['one_run']:.2f} ({eps['attack']}), ROC "
                      f"{eps['roc']:.2f} (the largest over the attacks, not corrected for "
                      "choosing among them)."]
        lines.append("")
    return lines


def canaries_min_units():
    from keras_adamixup.audit import canaries

    return canaries.MIN_UNITS


def _epsilon_text(h):
    if "canary_epsilon" not in h:
        return "–"
    mark = "" if h.get("canary_epsilon_measurable", True) else "*"
    return f"{h['canary_epsilon']:.2f}{mark} ({h['canary_epsilon_kind']})"


def _shadow_lines(meta):
    """Markdown: how many shadows each recipe had, and a warning below `ENOUGH_SHADOWS`."""
    recipes = meta.get("lira")
    recipes = [recipes] if isinstance(recipes, dict) else list(recipes or [])
    if not recipes:
        return []
    counts = ", ".join(f"{r['num_shadows']} ({r.get('name') or 'first recipe'})"
                       for r in recipes)
    lines = [f"- shadows per recipe: {counts}"]
    if not all(r.get("enough_shadows", True) for r in recipes):
        lines.append("- **warning**: fewer than 16 shadows in a recipe: LiRA's and RMIA's "
                     "TPR at low FPR is understated (3-4x at 4 shadows on the digits MLP)")
    return lines


def _exposure_lines(meta):
    """Markdown: the members each LiRA recipe singles out most (per-example vulnerability)."""
    recipes = meta.get("lira")
    recipes = [recipes] if isinstance(recipes, dict) else list(recipes or [])
    lines = []
    for recipe in recipes:
        if not recipe.get("most_exposed"):
            continue
        name = recipe.get("name")
        lines += [f"## Most exposed members (LiRA online{', ' + name if name else ''})", "",
                  f"{recipe['zero_fp_members']} member(s) are found at zero false positives "
                  "(no non-member scores as high).", "",
                  "| member (index) | label | score | non-members scoring as high |",
                  "|---|---|---|---|"]
        lines += [f"| {e['member']} | {e['label']} | {e['score']:.3f} | {e['nonmembers_above']} |"
                  for e in recipe["most_exposed"]]
        lines.append("")
    return lines


def _auc_text(row):
    ci = row.get("auc_ci")
    return f"{row['auc']:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _tpr_text(row, target):
    key = roc.tpr_key(target)
    ci = row.get(key + "_ci")
    text = f"{row[key]:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    if not row.get(key + "_measurable", True):
        text += f" † (at 0 false positives: 1/{row['n_nonmembers']} > {target:g})"
    return text


def _floor(values, low=1e-5):
    return [max(v, low) for v in values]


def _low_fpr(rows):
    """The smallest FPR the curves can resolve: 1 / (most non-members)."""
    sizes = [r.get("n_nonmembers", 0) for r in rows if r.get("n_nonmembers")]
    return 1.0 / max(sizes) if sizes else 1e-5


def _style_roc(ax, low=1e-5):
    ax.plot([low, 1], [low, 1], "k--", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7, loc="lower right")


def compare(reports, folder=None, attack=None):
    """One table and one ROC figure for several reports (e.g. undefended vs AdaMixup).

    Args:
        reports: `AuditReport`s (or paths to their JSON), or one of them.
        folder: if given, writes comparison.md, comparison.json and
            comparison_roc.png there.
        attack: plot this attack for every model; default each model's
            strongest attack (entire data set).

    Returns:
        The Markdown table.

    Example:

    ```python
    table = audit.compare([report_plain, report_defended], "compare_out")
    ```
    """
    if isinstance(reports, (AuditReport, str, os.PathLike)):
        reports = [reports]  # one report (or its report.json): a table of one row
    reports = [r if isinstance(r, AuditReport) else AuditReport.from_json(r) for r in reports]
    if not reports:
        raise ValueError("`reports` is empty: nothing to compare.")
    heads = [r.headline() for r in reports]
    shadows = any("min_shadows" in h for h in heads)
    epsilon = any("canary_epsilon" in h for h in heads)
    lines = _comparison_header(shadows, epsilon)
    headlines = [{"name": r.name, **h} for r, h in zip(reports, heads)]
    unmeasurable = False
    for r, h in zip(reports, heads):
        line, unmeasured = _comparison_row(r.name, h, shadows, epsilon)
        lines.append(line)
        unmeasurable = unmeasurable or unmeasured
    lines += _comparison_notes(heads, headlines, unmeasurable, shadows, epsilon)
    table = "\n".join(lines)
    if folder is not None:
        _write_comparison(folder, table, headlines, reports, attack)
    return table


def _comparison_header(shadows, epsilon):
    """The comparison table's header and separator lines."""
    tprs = "".join(f" TPR@{roc.fpr_label(t)}FPR |" for t in roc.LOW_FPRS)
    head = (f"| model | train acc | test acc | gap | best AUC (attack) | best advantage |"
            f"{tprs} worst slice AUC |" + (" shadows |" if shadows else "")
            + (" ε (canaries) |" if epsilon else ""))
    return [head, "|" + "---|" * (7 + len(roc.LOW_FPRS) + shadows + epsilon)]


def _comparison_row(name, h, shadows, epsilon):
    """One model's row of the table from its headline `h`.

    Returns:
        ``(line, unmeasurable)``: the row, and whether a low-FPR TPR in it
        could not be measured (marked †).
    """
    cells = ""
    unmeasurable = False
    for t in roc.LOW_FPRS:
        key = "best_" + roc.tpr_key(t)
        mark = "" if h.get(key + "_measurable", True) else " †"
        unmeasurable = unmeasurable or bool(mark)
        cells += f" {h[key]:.4f}{mark} |"
    noise = "" if h.get("worst_slice_significant", True) else " (noise)"
    line = (
        f"| {name} | {h['train_accuracy']:.4f} | {h['test_accuracy']:.4f} | "
        f"{h['generalization_gap']:.4f} | {h['best_auc']:.4f} ({h['best_auc_attack']}) | "
        f"{h['best_advantage']:.4f} |{cells} {h['worst_slice_auc']:.4f}{noise} |"
        + (f" {h.get('min_shadows', '–')} |" if shadows else "")
        + (f" {_epsilon_text(h)} |" if epsilon else "")
    )
    return line, unmeasurable


def _comparison_notes(heads, headlines, unmeasurable, shadows, epsilon):
    """The footnotes explaining the marks used in the table."""
    lines = []
    if unmeasurable:
        lines += ["", "† at zero false positives: fewer non-members than 1/FPR, so this FPR "
                  "cannot be measured."]
    if epsilon:
        lines += ["", "ε (canaries): the largest one-run lower bound over the canary kinds "
                  "and attacks (δ = 1e-5, 95 %, per canary unit; 0: not measurable with "
                  "these canaries, not a proof of privacy; * fewer than 10 canary units)."]
    if shadows and any(h.get("min_shadows", 16) < 16 for h in heads):
        lines += ["", "shadows: the fewest in a recipe; below 16 LiRA's and RMIA's TPR at "
                  "low FPR is understated."]
    if any(not h.get("worst_slice_significant", True) for h in headlines):
        lines += ["", "(noise): the worst slice does not stand out from chance after a "
                  "Bonferroni correction for the (attack, slice) results tested."]
    return lines


def _write_comparison(folder, table, headlines, reports, attack):
    """Writes comparison.md, comparison.json and comparison_roc.png into `folder`."""
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _io.write_text(os.path.join(folder, "comparison.md"),
                   f"# Membership-inference comparison\n\n{table}\n\n_{stamp}_\n")
    _io.write_text(os.path.join(folder, "comparison.json"),
                   json.dumps({"schema_version": SCHEMA_VERSION, "models": headlines},
                              indent=1))
    fig = _figure(figsize=(6, 5))
    ax = fig.subplots()
    low = min(_low_fpr(r.rows("entire")) for r in reports)
    for r in reports:
        chosen = attack or r.best("auc")["attack"]
        for row in r.rows("entire"):
            if row["attack"] == chosen and "roc" in row:
                ax.plot(_floor(row["roc"]["fpr"], low), _floor(row["roc"]["tpr"], low),
                        label=f"{r.name}: {chosen} (AUC {row['auc']:.3f})")
    _style_roc(ax, low)
    fig.tight_layout()
    with _io.atomic_path(os.path.join(folder, "comparison_roc.png")) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
