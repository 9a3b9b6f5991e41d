"""Differential fuzz test: random schemas and random statements on an attached pair, with the counters compared to an independent recount after every statement, and the server checked alive.

Each round builds a fresh pair of tables (id type, partitioned or not, foreign key with or
without cascades, user triggers that drop or rewrite rows), attaches it in the immediate or the
deferred counting mode, and runs a random sequence of writes (INSERT, UPDATE, DELETE, MERGE,
writable CTEs, moves, TRUNCATE, status events, webhook bodies, campaign inserts, deletes and key
changes), maintenance (fold_counters(), set_mode() either way, recalc, some in transactions that
roll back) and DDL (type changes, partition attach/detach/create/drop). After every statement
current_counters() (stored plus pending) must equal the recount in the same query, and in the
immediate mode the stored counters must too; after a last fold at the end of the round the stored
counters must, in either mode. Statements PostgreSQL or the extension refuse are fine; a counter
that differs from the recount, an internal error or a crash is a failure.

Runs psql (from PG_BIN) against PGHOST/PGPORT; only the Python standard library is needed.
"""

import argparse
import os
import random
import re
import subprocess
import sys

COUNTERS = ["messages_pending", "messages_sent", "messages_delivered", "messages_read", "messages_failed"]
STATUSES = ["pending", "sent", "delivered", "read", "failed"]
EVENTS = ["sent", "delivered", "read", "played", "failed"]
ID_TYPES = {
    "integer": ("integer", lambda n: str(n)),
    "bigint": ("bigint", lambda n: str(n)),
    "uuid": ("uuid", lambda n: f"'00000000-0000-0000-0000-{n:012d}'"),
    "text": ("text", lambda n: f"'c{n}'"),
}

# A plain recount of the rows per campaign id, in SQL the extension never runs.
RECOUNT = """(SELECT campaign_id,
                    count(*) FILTER (WHERE status = 'pending') AS p,
                    count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read')) AS s,
                    count(*) FILTER (WHERE status IN ('delivered', 'read')) AS d,
                    count(*) FILTER (WHERE status = 'read') AS r,
                    count(*) FILTER (WHERE status = 'failed') AS f
               FROM f_recipients GROUP BY 1) n ON n.campaign_id = c.id"""
RECOUNTED = "(coalesce(n.p, 0), coalesce(n.s, 0), coalesce(n.d, 0), coalesce(n.r, 0), coalesce(n.f, 0))"
STORED = "(c.messages_pending, c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed)"
IMMEDIATE = "(SELECT mode FROM campaign_counters.attachments WHERE campaigns = 'f_campaigns'::regclass) = 'immediate'"

# After every statement, in one query (one snapshot): campaigns whose stored plus pending counters
# (current_counters()) differ from the recount; while the pair counts in the immediate mode, those
# whose stored counters do; and what verify_campaign_counters() finds.
CHECK = f"""SELECT found.kind || '|{{step}}|' || found.n FROM (
SELECT count(*) FILTER (WHERE (k.messages_pending, k.messages_sent, k.messages_delivered, k.messages_read,
                               k.messages_failed) IS DISTINCT FROM {RECOUNTED}) AS current,
       count(*) FILTER (WHERE {IMMEDIATE} AND {STORED} IS DISTINCT FROM {RECOUNTED}) AS stored
  FROM f_campaigns c
  LEFT JOIN campaign_counters.current_counters(campaigns => 'f_campaigns') k ON k.campaign_id = c.id::text
  LEFT JOIN {RECOUNT}) AS t,
LATERAL (VALUES ('CURRENT', t.current), ('CHECK', t.stored),
                ('VERIFY', (SELECT count(*) FROM campaign_counters.verify_campaign_counters(campaigns => 'f_campaigns')
                             WHERE counter <> '(no campaign row)'))) AS found(kind, n);"""

# At the end of a round: after a fold the stored counters equal the recount in either mode, and
# no campaign row has changes left pending.
FOLDED = f"""SELECT campaign_counters.fold_counters('f_campaigns') >= 0;
SELECT 'FOLDED|{{step}}|' || count(*) FROM f_campaigns c LEFT JOIN {RECOUNT}
 WHERE {STORED} IS DISTINCT FROM {RECOUNTED}
    OR EXISTS (SELECT FROM campaign_counters.pending_changes p
                WHERE p.campaigns = 'f_campaigns'::regclass AND p.campaign_id = c.id::text);"""


class Round:
    """One random schema and one random statement sequence."""

    def __init__(self, rng, statements):
        self.rng = rng
        self.statements = statements
        self.id_type = rng.choice(list(ID_TYPES))
        self.sql_type, self.literal = ID_TYPES[self.id_type]
        self.partitioned = rng.random() < 0.5
        self.foreign_key = rng.choice(["none", "plain", "cascade"])
        self.triggers = rng.random() < 0.5
        self.mode = rng.choice(["immediate", "deferred"])
        self.next_message = 0
        self.shards = [0, 1, 2]

    def key(self):
        return self.literal(self.rng.randint(1, 6))

    def message(self, fresh=False):
        if fresh or self.next_message == 0:
            self.next_message += 1
            return f"f.{self.next_message}"
        return f"f.{self.rng.randint(1, self.next_message)}"

    def schema(self):
        references = {
            "none": "",
            "plain": " REFERENCES f_campaigns (id)",
            "cascade": " REFERENCES f_campaigns (id) ON UPDATE CASCADE ON DELETE CASCADE",
        }[self.foreign_key]
        time_type = self.rng.choice(["timestamptz", "timestamp"])
        lines = [
            "DROP TABLE IF EXISTS f_recipients, f_campaigns, f_spare CASCADE;",
            f"CREATE TABLE f_campaigns (id {self.sql_type} PRIMARY KEY, "
            + ", ".join(f"{c} integer NOT NULL DEFAULT 0" for c in COUNTERS) + ");",
            f"CREATE TABLE f_recipients (shard integer NOT NULL DEFAULT 0, campaign_id {self.sql_type}{references}, "
            "phone integer NOT NULL DEFAULT 0, status text NOT NULL DEFAULT 'pending', whatsapp_message_id text, "
            f"sent_at {time_type}, delivered_at {time_type}, read_at {time_type}, failed_at {time_type})"
            + (" PARTITION BY LIST (shard);" if self.partitioned else ";"),
        ]
        if self.partitioned:
            lines += [f"CREATE TABLE f_recipients_{s} PARTITION OF f_recipients FOR VALUES IN ({s});" for s in self.shards]
        if self.triggers:
            # Drops rows whose phone ends in 7; rewrites delivered to read for phones ending in 3;
            # moves rows whose phone ends in 5 to campaign 1.
            lines += [
                "CREATE OR REPLACE FUNCTION pg_temp.f_drop() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN IF NEW.phone % 10 = 7 THEN RETURN NULL; END IF; RETURN NEW; END$$;",
                "CREATE OR REPLACE FUNCTION pg_temp.f_rewrite() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN IF NEW.phone % 10 = 3 AND NEW.status = 'delivered' THEN NEW.status := 'read'; END IF; "
                f"IF NEW.phone % 10 = 5 THEN NEW.campaign_id := {self.literal(1)}; END IF; RETURN NEW; END$$;",
            ]
            targets = [f"f_recipients_{s}" for s in self.shards] if self.partitioned else ["f_recipients"]
            for target in targets:
                lines.append(f"CREATE TRIGGER f_drop BEFORE INSERT ON {target} FOR EACH ROW EXECUTE FUNCTION pg_temp.f_drop();")
                lines.append(f"CREATE TRIGGER f_rewrite BEFORE UPDATE ON {target} FOR EACH ROW EXECUTE FUNCTION pg_temp.f_rewrite();")
        ids = ", ".join(f"({self.literal(n)})" for n in range(1, 6))
        lines.append(f"INSERT INTO f_campaigns (id) VALUES {ids};")
        lines.append(self.insert())
        lines.append(f"SELECT campaign_counters.attach('f_recipients', 'f_campaigns', mode => '{self.mode}');")
        return lines

    def insert(self):
        rows = []
        for _ in range(self.rng.randint(1, 8)):
            rows.append(
                f"({self.rng.choice(self.shards)}, {self.key()}, {self.rng.randint(0, 99)}, "
                f"'{self.rng.choice(STATUSES)}', '{self.message(fresh=True)}')"
            )
        return f"INSERT INTO f_recipients (shard, campaign_id, phone, status, whatsapp_message_id) VALUES {', '.join(rows)};"

    def where(self):
        return self.rng.choice([
            f"phone % {self.rng.randint(2, 5)} = {self.rng.randint(0, 1)}",
            f"campaign_id = {self.key()}",
            f"whatsapp_message_id = '{self.message()}'",
            f"status = '{self.rng.choice(STATUSES)}'",
        ])

    def statement(self):
        r = self.rng
        choices = [
            (6, self.insert),
            (5, lambda: f"UPDATE f_recipients SET status = '{r.choice(STATUSES)}' WHERE {self.where()};"),
            (3, lambda: f"UPDATE f_recipients SET campaign_id = {self.key()} WHERE {self.where()};"),
            (2, lambda: f"UPDATE f_recipients SET shard = {r.choice(self.shards + [9])} WHERE {self.where()};"),
            (3, lambda: f"DELETE FROM f_recipients WHERE {self.where()};"),
            (2, lambda: "MERGE INTO f_recipients t USING (VALUES "
                f"('{self.message()}', '{r.choice(STATUSES)}', {r.randint(0, 2)}), ('{self.message(fresh=True)}', 'sent', 0)) "
                "AS s(message_id, status, action) ON t.whatsapp_message_id = s.message_id "
                "WHEN MATCHED AND s.action = 0 THEN DELETE WHEN MATCHED THEN UPDATE SET status = s.status "
                f"WHEN NOT MATCHED THEN INSERT (campaign_id, phone, status, whatsapp_message_id) VALUES ({self.key()}, {r.randint(0, 99)}, s.status, s.message_id);"),
            (2, lambda: f"WITH gone AS (DELETE FROM f_recipients WHERE {self.where()} RETURNING campaign_id, phone) "
                "INSERT INTO f_recipients (campaign_id, phone, status) SELECT campaign_id, phone + 1, 'read' FROM gone;"),
            (1, lambda: "TRUNCATE f_recipients;" if r.random() < 0.3 else "SELECT 1;"),
            (4, lambda: f"SELECT campaign_counters.apply_recipient_status('{self.message()}', '{r.choice(EVENTS)}', "
                f"'2026-01-01'::timestamptz + interval '{r.randint(0, 3600)} seconds', 'f_recipients');"),
            (3, self.webhook),
            (2, lambda: f"INSERT INTO f_campaigns (id) VALUES ({self.key()}) ON CONFLICT DO NOTHING;"),
            (1, lambda: f"DELETE FROM f_campaigns WHERE id = {self.key()};"),
            (2, lambda: f"UPDATE f_campaigns SET id = {self.literal(r.randint(1, 8))} WHERE id = {self.key()};"),
            (1, lambda: f"UPDATE f_campaigns SET messages_sent = messages_sent WHERE id = {self.key()};"),
            (1, self.ddl),
            (3, lambda: "SELECT campaign_counters.fold_counters('f_campaigns');"),
            (2, lambda: f"SELECT campaign_counters.set_mode('f_recipients', '{r.choice(['immediate', 'deferred'])}');"),
            (1, lambda: "SELECT campaign_counters.recalc_campaign_counters(campaigns => 'f_campaigns');"),
            (1, lambda: f"SELECT campaign_counters.recalc_campaign_counters({self.key()}::text, 'f_campaigns');"),
            (1, self.rolled_back),
        ]
        weights = [w for w, _ in choices]
        return r.choices([f for _, f in choices], weights)[0]()

    def rolled_back(self):
        """A write and a fold or a mode switch in a transaction that rolls back: the pending
        changes it recorded, deleted or folded come back as they were."""
        r = self.rng
        maintenance = r.choice([
            "SELECT campaign_counters.fold_counters('f_campaigns');",
            f"SELECT campaign_counters.set_mode('f_recipients', '{r.choice(['immediate', 'deferred'])}');",
        ])
        steps = [f"UPDATE f_recipients SET status = '{r.choice(STATUSES)}' WHERE {self.where()};", maintenance]
        r.shuffle(steps)
        return "BEGIN; " + " ".join(steps) + " ROLLBACK;"

    def webhook(self):
        items = []
        for _ in range(self.rng.randint(1, 6)):
            items.append(
                f'{{"id":"{self.message()}","status":"{self.rng.choice(EVENTS)}","timestamp":"{1767225600 + self.rng.randint(0, 3600)}"}}'
            )
        body = ('{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":['
                + ",".join(items) + "]}}]}]}")
        return f"SELECT count(*) FROM campaign_counters.apply_whatsapp_webhook('{body}', 'f_recipients');"

    def ddl(self):
        r = self.rng
        options = ["ALTER TABLE f_recipients ADD COLUMN IF NOT EXISTS extra text;"]
        if self.id_type in ("integer", "bigint"):
            options += [
                f"ALTER TABLE f_recipients ALTER COLUMN campaign_id TYPE {r.choice(['integer', 'bigint'])};",
                f"ALTER TABLE f_campaigns ALTER COLUMN id TYPE {r.choice(['integer', 'bigint'])};",
            ]
        if self.id_type == "text":
            options.append(f"ALTER TABLE f_recipients ALTER COLUMN campaign_id TYPE {r.choice(['text', 'varchar(40)'])};")
        options.append("ALTER TABLE f_recipients ALTER COLUMN status TYPE text USING "
                       "(CASE WHEN phone % 4 = 0 AND status = 'sent' THEN 'failed' ELSE status END);")
        if self.partitioned:
            shard = r.choice(self.shards)
            options += [
                f"ALTER TABLE f_recipients DETACH PARTITION f_recipients_{shard};",
                f"ALTER TABLE f_recipients ATTACH PARTITION f_recipients_{shard} FOR VALUES IN ({shard});",
                f"CREATE TABLE IF NOT EXISTS f_recipients_9 PARTITION OF f_recipients FOR VALUES IN (9);",
                "DROP TABLE IF EXISTS f_recipients_9;",
                f"INSERT INTO f_recipients_{shard} (shard, campaign_id, status) VALUES ({shard}, {self.key()}, 'read');",
            ]
        return r.choice(options)

    def script(self):
        lines = self.schema()
        lines.append(CHECK.format(step=0))
        for step in range(1, self.statements + 1):
            lines.append(self.statement())
            lines.append(CHECK.format(step=step))
        lines.append(FOLDED.format(step=self.statements + 1))
        lines.append("SELECT 'ALIVE';")
        return "\n".join(lines) + "\n"


def run_round(psql, seed, statements):
    rng = random.Random(seed)
    round_ = Round(rng, statements)
    script = round_.script()
    result = subprocess.run(
        [psql, "-X", "-At", "-v", "ON_ERROR_STOP=0", "-f", "-"],
        input=script, capture_output=True, text=True, timeout=600,
    )
    drift = [line for line in result.stdout.splitlines()
             if re.match(r"^(CURRENT|CHECK|VERIFY|FOLDED)\|\d+\|[1-9]", line)]
    bad_errors = [line for line in result.stderr.splitlines()
                  if re.search(r"XX000|panic|server closed the connection|terminated", line)]
    alive = "ALIVE" in result.stdout.splitlines()
    refused = sum(1 for line in result.stderr.splitlines() if "ERROR:" in line)
    return round_, drift, bad_errors, alive, refused, script


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--statements", type=int, default=40)
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    args = parser.parse_args()
    psql = os.path.join(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"), "psql")
    totals = {"statements": 0, "refused": 0, "drift": 0, "crashes": 0, "internal": 0}
    print(f"fuzz: seed {args.seed}, {args.rounds} rounds of {args.statements} statements")
    failed = False
    for number in range(args.rounds):
        seed = args.seed + number
        round_, drift, bad_errors, alive, refused, script = run_round(psql, seed, args.statements)
        totals["statements"] += args.statements
        totals["refused"] += refused
        totals["drift"] += len(drift)
        totals["internal"] += len(bad_errors)
        totals["crashes"] += 0 if alive else 1
        if drift or bad_errors or not alive:
            failed = True
            kept = f"/tmp/campaign_counters-fuzz-{seed}.sql"
            with open(kept, "w") as out:
                out.write(script)
            shape = f"{round_.mode} mode, {round_.id_type} ids, partitioned={round_.partitioned}, fk={round_.foreign_key}, triggers={round_.triggers}"
            print(f"fuzz: round seed {seed} FAILED ({shape}); script kept in {kept}")
            for line in (drift + bad_errors)[:10]:
                print(f"  {line}")
            if not alive:
                print("  the server did not answer at the end of the round")
            break
    print("fuzz: {statements} statements, {refused} refused by PostgreSQL or the extension, "
          "drift {drift}, internal errors {internal}, crashes {crashes}".format(**totals))
    ran = totals["statements"]
    print(f"fuzz: {0 if failed else 1} passed, {1 if failed else 0} failed")
    sys.exit(1 if failed or ran == 0 else 0)


if __name__ == "__main__":
    main()
