"""Judge checkov's JSON report against hack/lint/checkov-skips.yaml: exit 1 on any finding not suppressed.

checkov's own ``--skip-check`` can only drop a check everywhere; a suppression here names the check,
the sets of manifests it applies to (fnmatch patterns on the scanned directory's first level:
``chart-default``, ``chart-production``, ``children``) and the resources it covers (fnmatch patterns on
checkov's ``KIND.NAMESPACE.NAME``), and must give its reason. The gate fails on:

* a failed check that no entry covers (printed with its resource and file);
* an entry that covered nothing in this run: a stale suppression hides the next real finding, so it
  has to go (or its patterns be narrowed) when the finding is fixed;
* an entry without a reason, checkov parsing errors, or a report that checked no resource.

Layout of the scanned directory (hack/lint/run.sh): ``<set>/<file>.yaml``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Skip:
    check: str
    sets: list[str]
    resources: list[str]
    reason: str
    used: int = field(default=0)

    def covers(self, check: str, where: str, resource: str) -> bool:
        return (
            check == self.check
            and any(fnmatchcase(where, pattern) for pattern in self.sets)
            and any(fnmatchcase(resource, pattern) for pattern in self.resources)
        )


def load_skips(path: Path) -> tuple[list[Skip], list[str]]:
    entries = (yaml.safe_load(path.read_text()) or {}).get("skips") or []
    skips, problems = [], []
    for i, entry in enumerate(entries):
        where = f"{path.name} entry {i + 1} ({entry.get('check', '?')})"
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            problems.append(f"{where}: no reason")
        if not entry.get("check") or not entry.get("in") or not entry.get("resources"):
            problems.append(f"{where}: needs check, in and resources")
            continue
        sets = entry["in"] if isinstance(entry["in"], list) else [entry["in"]]
        skips.append(Skip(entry["check"], sets, list(entry["resources"]), reason))
    return skips, problems


def set_of(file_path: str) -> str:
    return file_path.lstrip("/").split("/", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="checkov -o json output")
    parser.add_argument("--skips", type=Path, required=True)
    args = parser.parse_args(argv)
    skips, problems = load_skips(args.skips)
    raw: Any = json.loads(args.report.read_text() or "null")
    reports = [r for r in (raw if isinstance(raw, list) else [raw]) if isinstance(r, dict)]
    passed = failed = resources = 0
    suppressed: dict[str, int] = {}
    for report in reports:
        summary = report.get("summary", {})
        resources += summary.get("resource_count", 0)
        if summary.get("parsing_errors"):
            problems.append(f"checkov could not parse {summary['parsing_errors']} file(s)")
        passed += summary.get("passed", 0)  # counted from the summary: --quiet lists failures only
        results = report.get("results", {})
        for finding in results.get("failed_checks", []):
            where, resource = set_of(finding["file_path"]), finding["resource"]
            skip = next((s for s in skips if s.covers(finding["check_id"], where, resource)), None)
            if skip is None:
                failed += 1
                lines = finding.get("file_line_range") or ["?", "?"]
                problems.append(
                    f"{finding['check_id']} {finding['check_name']}: {resource} "
                    f"({finding['file_path'].lstrip('/')}:{lines[0]}-{lines[1]})"
                )
            else:
                skip.used += 1
                suppressed[skip.check] = suppressed.get(skip.check, 0) + 1
    if resources == 0:
        problems.append("checkov checked no resource (empty or missing report)")
    for skip in skips:
        if not skip.used:
            problems.append(
                f"stale suppression in {args.skips.name}: {skip.check} in {skip.sets} for {skip.resources} "
                "matched nothing: remove it (or narrow it) now that the finding is gone"
            )
    total = sum(suppressed.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(suppressed.items()))
    print(
        f"checkov: {resources} resources, {passed} checks passed, {total} failed but suppressed"
        f" ({detail}), {failed} failed"
    )
    for problem in problems:
        print(f"checkov: FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
