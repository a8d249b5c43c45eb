"""Grow a runq database to N jobs by copying one finished job (bench/run.sh, scale test).

    python3 bench/fill_db.py DB N

The database must hold the one job (runq stopped). Each copy gets a new seq (the
AUTOINCREMENT key) and a new id 'run_' + 12 hex digits (a bijective hash of the copy's
number, so ids are spread over the id index like random ones); every other column is
the template's. One INSERT ... SELECT over a recursive CTE, in one transaction.
"""
import sqlite3
import sys
import time

db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=OFF")
con.execute("PRAGMA cache_size=-524288")  # 512 MiB: the index inserts stay in memory
cols = [r[1] for r in con.execute("PRAGMA table_info(jobs)") if r[1] not in ("seq", "id")]
(template,) = con.execute("SELECT id FROM jobs ORDER BY seq LIMIT 1").fetchone()
collist = ", ".join(cols)
t0 = time.monotonic()
con.execute("BEGIN")
con.execute(
    f"""
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
    INSERT INTO jobs (id, {collist})
    SELECT printf('run_%012x', (x * 2654435761) % 281474976710656), {collist}
    FROM c, (SELECT * FROM jobs WHERE id = ?)
    """,
    (n, template),
)
con.execute("COMMIT")
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
(count,) = con.execute("SELECT count(*) FROM jobs").fetchone()
con.close()
print(f"{count} jobs in {db} ({time.monotonic() - t0:.1f} s to copy {n})", file=sys.stderr)
