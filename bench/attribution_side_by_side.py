"""Re-attribution on PostgreSQL, an older commit's storage against this tree's, side by side in
one run on the same data (issue 16): the machine is shared and noisy, so only ratios taken in
the same minutes mean much.

The data set is `bench/attribution_bench.py`'s (`load`, generated inside PostgreSQL), in a
database that is kept (`--database NAME`; loaded when it does not exist, so later runs skip
the load). The older code is `storage/attribution.py` at `--old-ref` (`git show`), loaded
beside this tree's and driven by this tree's `services.attribution.reattribute` (the store's
interface did not change). Each round flips the workspace's click window (7 d, 5 d, …), so
every run re-attributes after a real change, and runs the old and the new code in turn (the
order alternates); after each run the credits are checksummed (every column but the revision,
as the bench's `CHECKSUM`), and runs under the same window must agree.

    .venv/bin/python bench/attribution_side_by_side.py --database reattr_quick --quick
    .venv/bin/python bench/attribution_side_by_side.py --database reattr_full --rounds 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from attribution_bench import CHECKSUM, PG_ADMIN, T0, D, load, loadavg
from clicktrail.domain.models import Workspace
from clicktrail.services import attribution
from clicktrail.storage.attribution import AttributionQueries
from clicktrail.storage.database import create_engine, migrate

ROOT = Path(__file__).resolve().parent.parent


def old_module(ref: str) -> ModuleType:
    """`storage/attribution.py` as it was at `ref`, imported under another name."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:src/clicktrail/storage/attribution.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "old_attribution.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("old_attribution", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--database", required=True, help="kept; loaded if it does not exist")
    p.add_argument("--quick", action="store_true", help="100k conversions over 1M clicks")
    p.add_argument("--old-ref", default="da20a44", help="the commit to compare against")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    size = (200_000, 1_000_000, 100_000) if args.quick else (1_000_000, 10_000_000, 1_000_000)
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": args.database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{args.database}"'))
    admin.dispose()
    engine = create_engine(PG_ADMIN.rsplit("/", 1)[0] + "/" + args.database)
    if not exists:
        migrate(engine)
        load(engine, *size, rollup=False)
    old = old_module(args.old_ref).AttributionQueries(engine)
    new = AttributionQueries(engine)
    ws = Workspace(1, "ws_bench", "bench", "Bench")
    now = T0 + 30 * D

    def checksum() -> list[int]:
        with engine.connect() as conn:
            return [int(x or 0) for x in conn.execute(sa.text(CHECKSUM)).one()]

    out: dict[str, object] = {
        "command": " ".join(["bench/attribution_side_by_side.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "old_ref": args.old_ref, "loadavg_before": loadavg(),
    }  # fmt: skip
    with engine.connect() as conn:
        if not conn.execute(sa.text("SELECT count(*) FROM conversion_credits")).scalar():
            t = time.perf_counter()
            attribution.reattribute(new, ws.id, now)
            out["first_new_s"] = round(time.perf_counter() - t, 1)
    times: dict[str, list[float]] = {"old": [], "new": []}
    sums: dict[str, list[list[int]]] = {}
    window = "5d"
    for r in range(args.rounds):
        for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
            window = "7d" if window == "5d" else "5d"
            attribution.set_settings(new, ws, None, click_window=window, now_us=now)
            t = time.perf_counter()
            done = attribution.reattribute(old if name == "old" else new, ws.id, now)
            times[name].append(round(time.perf_counter() - t, 1))
            assert done.reattributed == [ws.id], done
            sums.setdefault(window, []).append(checksum())
            print(name, window, times[name][-1], loadavg(), file=sys.stderr, flush=True)
    assert all(all(s == v[0] for s in v) for v in sums.values()), sums
    engine.dispose()
    out.update({
        "reattribute_after_a_window_change_s": times,
        "ratio_old_to_new": round(sum(times["old"]) / sum(times["new"]), 2),
        "credit_rows": {w: v[0][0] for w, v in sums.items()}, "loadavg_end": loadavg(),
    })  # fmt: skip
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
