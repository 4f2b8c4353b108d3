"""What a run reports about its input rows: the rows it skipped, the rows it changed, label warnings.

Files written into the run directory (only when there is something to list):

``skipped_rows.csv``
    Input records that were dropped (e.g. unparseable molecules with ``--skip-invalid``):
    ``source, row, input, reason``.
``changed_rows.csv``
    Input records that were used in a changed form (e.g. a salt reduced to its largest fragment):
    ``source, row, input, changed_to, reason``.

A modality lists them in ``LoadedData.summary["skipped_rows"]`` / ``["changed_rows"]`` (lists of
dicts); :func:`write_row_reports` takes them out of the summary (which keeps the counts), writes
the files and prints one line for each, plus the warnings of :func:`biodl.data.targets.describe_labels`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from biodl.data.base import LoadedData
from biodl.data.targets import describe_labels

SKIPPED_FILE = "skipped_rows.csv"
CHANGED_FILE = "changed_rows.csv"


def write_row_reports(out: Path, data: LoadedData, *, write: bool = True) -> None:
    """Write ``skipped_rows.csv`` / ``changed_rows.csv`` under ``out`` and print what was done.

    ``write=False`` (other ranks of a distributed run) only removes the lists from the summary.
    """
    skipped = data.summary.pop("skipped_rows", None)
    changed = data.summary.pop("changed_rows", None)
    if not write:
        return
    if skipped:
        pd.DataFrame(skipped).to_csv(out / SKIPPED_FILE, index=False)
        print(f"{len(skipped)} invalid input row(s) skipped; listed in {out / SKIPPED_FILE}")
    if changed:
        frame = pd.DataFrame(changed)
        frame.to_csv(out / CHANGED_FILE, index=False)
        reasons = frame["reason"].value_counts().to_dict() if "reason" in frame.columns else {}
        why = "; ".join(f"{n} {r}" for r, n in reasons.items())
        print(f"{len(changed)} input row(s) changed ({why}); listed in {out / CHANGED_FILE}")
    if data.targets is not None:
        for note in describe_labels(data.targets):
            print(f"warning: {note}")
