//! The counters behind [`Store::summary`](super::Store::summary) (issue 14):
//! the database keeps them right on every write, so that a summary reads a
//! few hundred counter rows instead of every finding.
//!
//! # What is counted
//!
//! `summary_counts` holds one row per (kind, repository, key), with an
//! image count and a finding count. Only findings that count (not
//! suppressed) are counted.
//!
//! | kind | repository | key | images | findings |
//! |---|---|---|---|---|
//! | `V` | `''` | verdict (`not_scanned` for none) | images with it | — |
//! | `S` | `''` | `severity|fix_state` (severity's rank) | — | findings |
//! | `P` | `''` | binary package | images with a finding in it | findings in it |
//! | `v`, `s`, `p` | a repository | as above | of the images listed there | … |
//! | `r` | a repository | `''` | images listed there with findings | their findings |
//! | `v+`, `s+`, `p+` | a prefix | as `v`, `s`, `p` | the sums of the rows of the repositories below it (`prefix/…`) | … |
//!
//! Upper-case kinds are the whole registry (every image, tagged or not:
//! the unscoped summary, exactly what the aggregate over the rows said).
//! Lower-case kinds count per repository the images listed there (a tag,
//! or the untagged listing). A scoped summary (a token's prefixes, or
//! `?repository=`) sums the repositories it covers, so it counts *image
//! listings*: an image listed in two repositories under the scope counts
//! once in each (twice in `images`, its findings twice in `findings`, and
//! once per repository in a package's `images`), exactly as the two
//! repositories' own summaries add up; an image listed twice in one
//! repository (two tags) counts once there. `top_repositories` is the same
//! in both readings (one row per repository). Distinct images across a
//! prefix would need a count per image per prefix that any scope could
//! ask for; listings are what can be kept as counters.
//!
//! An image count needs to know when an image's first finding in a
//! package appears or its last one goes (a 0↔1 transition moves the
//! package's image count), and a tag that lists an image in a new
//! repository adds the image's counts there. So each store keeps every
//! image's aggregate beside the counters:
//!
//! - **SQLite**: two per-image tables, `summary_images` (an image's
//!   findings) and `summary_packages` (its findings per package), kept by
//!   the row triggers on `findings`.
//! - **PostgreSQL** (since version 7): the column `images.counts`
//!   ([`super::FindingCounts`]: findings per `severity|fix_state` key and
//!   per package, as JSON), computed in Rust from the rows and written in
//!   the statement that writes the image's results (`finish_scan`,
//!   `finish_rescan`; a rescan whose results are unchanged leaves it as it
//!   is). The finding rows themselves are not watched: a change of an
//!   image's counters is its old `counts` taken away and its new ones
//!   added. Since version 11 the rescan also says which keys change and
//!   from what to what (`images.counts_change`); the trigger checks that
//!   claim against both documents and takes the deltas from it, or
//!   compares the documents whole when it does not hold
//!   ([`postgres_counts_change_migration`]).
//!
//! A scoped summary reads, for each prefix, the prefix's totals and its
//! own name's rows (a few hundred, however many repositories are below it),
//! and the `r` rows of its repositories (one each, for the top
//! repositories). The totals are kept beside the rows they sum: on
//! SQLite by triggers on `summary_counts` itself, on PostgreSQL by the
//! fold (the deltas stay per repository, and a summary sums those of the
//! prefix's repositories, a byte-wise range of the primary key).
//!
//! # Who keeps them
//!
//! The database, by triggers: no write path in Rust knows about the
//! counters (on PostgreSQL it writes `images.counts` with the results, and
//! nothing else). The scan, the rescan, deletions and tag moves are all
//! covered, and each migration back-fills what it adds from the rows.
//!
//! **SQLite**: row triggers on `images` (verdict), `findings` (insert,
//! delete, update — including the cascade when an image is deleted, and a
//! future `UPDATE findings SET suppressed`) and `tags` (a repository gains
//! its first listing of an image or loses its last) update
//! `summary_counts` and the per-image tables in place. SQLite has one
//! writer (the file is locked to one process), so nothing contends.
//!
//! **PostgreSQL**: statement-level triggers (transition tables: one
//! aggregate per statement, not per row) on `images` (insert, delete, and
//! an update that changes `verdict` or `counts`: old counters out, new
//! ones in, fanned out to the repositories listing the image) and `tags`
//! (a first or last listing adds or takes away the image's counters, read
//! from its `counts`). Nothing watches `findings`: how the rows are stored
//! is the rescan's business. Measured on 2,000 images with 60 packages
//! each: a row trigger on `images` wrote four times as many deltas (no sum
//! across a batch's images) in about the same time; the transition
//! tables copy each updated row, but a rescan updates the rows without
//! rewriting their reports (TOAST pointers are copied), and an UPDATE
//! whose rows keep their verdict and counts costs a join of them (each
//! row paired with its old version once, since version 13). The trigger functions run without JIT:
//! the estimates of a batch of thousands of images passed its threshold,
//! and compiling (1.5 s) cost more than running.
//!
//! Several processes write at once, and every scan touches
//! the same few global rows (`S` and `P` keys): updated in place, they
//! would serialize all writers on those rows and deadlock when two
//! statements lock them in different orders. So the triggers only
//! *append* rows to `summary_deltas`; nobody waits for anybody there.
//! A summary reads `summary_counts` plus the sum of the deltas in one
//! statement (one snapshot: exact, never stale). A transaction that writes
//! a delta whose sequence number is a multiple of [`FOLD_EVERY`] folds
//! the deltas into `summary_counts` at its commit (a deferred constraint
//! trigger), if it gets the fold's advisory lock without waiting
//! (`pg_try_advisory_xact_lock`; otherwise someone else is folding, and
//! the next multiple tries again). At the commit, the transaction's own
//! deltas are all written, and those that cancel never reach
//! `summary_counts`. Only
//! the fold updates `summary_counts`, one fold at a time, so its rows are
//! never contended either; the fold deletes the deltas it saw and adds
//! their sums in one statement, so readers see either the deltas or their
//! sums, never both or neither. The deltas stay a few thousand rows, so
//! reading them costs little. (`SELECT summary_fold()` folds by hand.)
//!
//! What must serialize is one image's counters against a tag move of that
//! image: a tag listing an image in a repository adds the image's counts
//! as they are, while a concurrent rescan of the image adds its change to
//! the repositories it sees listing it — each would miss the other. So
//! the `tags` triggers first lock the images' rows (`summary_lock`: `FOR
//! NO KEY UPDATE`, in digest order: what an `UPDATE images` takes, so
//! foreign-key checks are not blocked) and only then read the images'
//! `counts` with a fresh snapshot (PL/pgSQL takes one per statement in
//! READ COMMITTED). The `images` triggers run after their statement has
//! locked the rows it wrote, and read the tags then, with a fresh
//! snapshot: a tag move that locked the image first has committed (its
//! listing is seen and the change fanned out to it), one that comes after
//! waits for the commit and reads the new `counts`. A tag deleted before
//! its image is updated (a manifest deletion) takes the lock first rather
//! than after a rescan has — the one lock order that cannot cycle with
//! them. Writers of different images never wait for each other; a tag
//! move waits for a rescan writing the same image to commit. What can
//! still deadlock is what could before the counters plus this: one
//! envelope moving a tag between two images that one rescan batch writes
//! at once, each transaction holding one image; PostgreSQL then aborts one
//! of them, and the store runs that write again (`retried` in the store's
//! module).
//!
//! Version 5 kept the counters from the finding rows (statement triggers
//! on `findings`, and the per-image tables as SQLite's, updated in place
//! under the image's lock); version 7 replaced those by `images.counts`,
//! so that findings can be stored in any layout.

use std::collections::{BTreeMap, HashMap};

use trawl::Severity;
use trawl::classify::FixStateKind;

use super::query::{Affected, Dialect, RegistrySummary, Rows, Scope, Sql, under};
use super::{StoreError, fix_state_of, severity_of_rank};

/// PostgreSQL: a transaction that writes a delta whose sequence number is
/// a multiple of this folds the deltas into `summary_counts` at its commit
/// (since version 12; [`postgres_deltas_migration`]).
pub(super) const FOLD_EVERY: i64 = 8192;

/// [`FOLD_EVERY`] of versions 5 to 11.
const FOLD_EVERY_5: i64 = 2048;

/// The advisory lock of the fold (one namespace with the store's other
/// locks: the bytes of "trawlw" and a number).
pub(super) const FOLD_LOCK: i64 = 0x7472_6177_6c77_0004;

/// The counters' tables and their back-fill from the rows, in both
/// dialects (`{ns}`: a finding that counts; `{c}`: the byte-wise
/// collation).
fn tables(dialect: Dialect) -> String {
    let (c, int, serial) = match dialect {
        Dialect::Sqlite => ("", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Dialect::Postgres => (" COLLATE \"C\"", "bigint", "bigserial PRIMARY KEY"),
    };
    format!(
        "
CREATE TABLE summary_counts (
    kind text NOT NULL,
    repository text{c} NOT NULL,
    key text{c} NOT NULL,
    images {int} NOT NULL,
    findings {int} NOT NULL,
    PRIMARY KEY (kind, repository, key)
);
CREATE INDEX summary_counts_zero ON summary_counts (kind) WHERE images = 0 AND findings = 0;
CREATE INDEX summary_top_packages ON summary_counts (images DESC, findings DESC, key)
    WHERE kind = 'P';
CREATE INDEX summary_top_repositories ON summary_counts (findings DESC, images DESC, repository)
    WHERE kind = 'r';
CREATE TABLE summary_deltas (
    seq {serial},
    kind text NOT NULL,
    repository text{c} NOT NULL,
    key text{c} NOT NULL,
    images {int} NOT NULL,
    findings {int} NOT NULL
);
CREATE TABLE summary_images (
    digest text PRIMARY KEY,
    findings {int} NOT NULL
);
CREATE TABLE summary_packages (
    digest text NOT NULL,
    package text NOT NULL,
    findings {int} NOT NULL,
    PRIMARY KEY (digest, package)
);
"
    )
}

/// Fills the counters from the rows (an existing store being migrated).
fn backfill(dialect: Dialect) -> String {
    let (ns, f_ns) = match dialect {
        Dialect::Sqlite => ("suppressed = 0", "f.suppressed = 0"),
        Dialect::Postgres => ("NOT suppressed", "NOT f.suppressed"),
    };
    format!(
        "
INSERT INTO summary_images (digest, findings)
    SELECT digest, count(*) FROM findings WHERE {ns} GROUP BY digest;
INSERT INTO summary_packages (digest, package, findings)
    SELECT digest, package, count(*) FROM findings WHERE {ns} GROUP BY digest, package;
INSERT INTO summary_counts (kind, repository, key, images, findings)
SELECT 'V', '', coalesce(verdict, 'not_scanned'), count(*), 0
    FROM images GROUP BY coalesce(verdict, 'not_scanned')
UNION ALL
SELECT 'S', '', severity || '|' || fix_state, 0, count(*)
    FROM findings WHERE {ns} GROUP BY severity, fix_state
UNION ALL
SELECT 'P', '', package, count(*), sum(findings) FROM summary_packages GROUP BY package
UNION ALL
SELECT 'v', p.repository, coalesce(i.verdict, 'not_scanned'), count(*), 0
    FROM (SELECT DISTINCT repository, digest FROM tags) p JOIN images i ON i.digest = p.digest
    GROUP BY p.repository, coalesce(i.verdict, 'not_scanned')
UNION ALL
SELECT 's', p.repository, f.severity || '|' || f.fix_state, 0, count(*)
    FROM (SELECT DISTINCT repository, digest FROM tags) p
    JOIN findings f ON f.digest = p.digest AND {f_ns}
    GROUP BY p.repository, f.severity, f.fix_state
UNION ALL
SELECT 'p', p.repository, k.package, count(*), sum(k.findings)
    FROM (SELECT DISTINCT repository, digest FROM tags) p
    JOIN summary_packages k ON k.digest = p.digest
    GROUP BY p.repository, k.package
UNION ALL
SELECT 'r', p.repository, '', count(*), sum(s.findings)
    FROM (SELECT DISTINCT repository, digest FROM tags) p
    JOIN summary_images s ON s.digest = p.digest
    WHERE s.findings > 0
    GROUP BY p.repository;
"
    )
}

/// What SQLite's version 8 adds: the counters, filled, and the row
/// triggers that keep them.
pub(super) fn sqlite_migration() -> String {
    let upsert = "ON CONFLICT (kind, repository, key) DO UPDATE SET
        images = images + excluded.images, findings = findings + excluded.findings";
    // A finding row `r` that counts, added (`s` = 1) or taken away (-1).
    let finding = |r: &str, s: i64| {
        format!(
            "
    INSERT INTO summary_packages (digest, package, findings) VALUES ({r}.digest, {r}.package, {s})
        ON CONFLICT (digest, package) DO UPDATE SET findings = findings + excluded.findings;
    INSERT INTO summary_images (digest, findings) VALUES ({r}.digest, {s})
        ON CONFLICT (digest) DO UPDATE SET findings = findings + excluded.findings;
    INSERT INTO summary_counts (kind, repository, key, images, findings)
    SELECT CASE WHEN r.repository IS NULL THEN upper(c.kind) ELSE c.kind END,
           coalesce(r.repository, ''), c.key, c.images, c.findings
    FROM (SELECT NULL AS repository
          UNION ALL SELECT DISTINCT repository FROM tags WHERE digest = {r}.digest) r,
         (SELECT 's' AS kind, {r}.severity || '|' || {r}.fix_state AS key, 0 AS images,
                 {s} AS findings
          UNION ALL
          SELECT 'p', {r}.package, (n > 0) - (n - ({s}) > 0), {s}
          FROM (SELECT coalesce((SELECT findings FROM summary_packages
                                 WHERE digest = {r}.digest AND package = {r}.package), 0) AS n)
          UNION ALL
          SELECT 'r', '', (n > 0) - (n - ({s}) > 0), {s}
          FROM (SELECT coalesce((SELECT findings FROM summary_images
                                 WHERE digest = {r}.digest), 0) AS n)) c
    WHERE (r.repository IS NOT NULL OR c.kind <> 'r') AND (c.images <> 0 OR c.findings <> 0)
    {upsert};"
        )
    };
    // An image row `r` (its verdict) added or taken away.
    let image = |r: &str, s: i64| {
        format!(
            "
    INSERT INTO summary_counts (kind, repository, key, images, findings)
    SELECT CASE WHEN t.repository IS NULL THEN 'V' ELSE 'v' END, coalesce(t.repository, ''),
           coalesce({r}.verdict, 'not_scanned'), {s}, 0
    FROM (SELECT NULL AS repository
          UNION ALL SELECT DISTINCT repository FROM tags WHERE digest = {r}.digest) t
    WHERE true
    {upsert};"
        )
    };
    // The image `r.digest` listed in `r.repository` (`s` = 1) or no longer.
    let listing = |r: &str, s: i64| {
        format!(
            "
    INSERT INTO summary_counts (kind, repository, key, images, findings)
    SELECT 'v', {r}.repository, coalesce(verdict, 'not_scanned'), {s}, 0
        FROM images WHERE digest = {r}.digest
    UNION ALL
    SELECT 's', {r}.repository, severity || '|' || fix_state, 0, {s} * count(*)
        FROM findings WHERE digest = {r}.digest AND suppressed = 0
        GROUP BY severity, fix_state
    UNION ALL
    SELECT 'p', {r}.repository, package, {s}, {s} * findings
        FROM summary_packages WHERE digest = {r}.digest
    UNION ALL
    SELECT 'r', {r}.repository, '', {s}, {s} * findings
        FROM summary_images WHERE digest = {r}.digest AND findings > 0
    {upsert};"
        )
    };
    let pairs = |r: &str| {
        format!(
            "(SELECT count(*) FROM tags WHERE repository = {r}.repository AND digest = {r}.digest)"
        )
    };
    let moved = "(OLD.repository IS NOT NEW.repository OR OLD.digest IS NOT NEW.digest)";
    format!(
        "{tables}
{backfill}
CREATE TRIGGER summary_counts_zero AFTER UPDATE ON summary_counts
    WHEN NEW.images = 0 AND NEW.findings = 0 BEGIN
    DELETE FROM summary_counts
        WHERE kind = NEW.kind AND repository = NEW.repository AND key = NEW.key;
END;
CREATE TRIGGER summary_images_zero AFTER UPDATE ON summary_images WHEN NEW.findings = 0 BEGIN
    DELETE FROM summary_images WHERE digest = NEW.digest;
END;
CREATE TRIGGER summary_packages_zero AFTER UPDATE ON summary_packages
    WHEN NEW.findings = 0 BEGIN
    DELETE FROM summary_packages WHERE digest = NEW.digest AND package = NEW.package;
END;
CREATE TRIGGER summary_findings_insert AFTER INSERT ON findings
    WHEN NEW.suppressed = 0 BEGIN {fi}
END;
CREATE TRIGGER summary_findings_delete AFTER DELETE ON findings
    WHEN OLD.suppressed = 0 BEGIN {fd}
END;
CREATE TRIGGER summary_findings_update_old AFTER UPDATE ON findings
    WHEN OLD.suppressed = 0 BEGIN {fd}
END;
CREATE TRIGGER summary_findings_update_new AFTER UPDATE ON findings
    WHEN NEW.suppressed = 0 BEGIN {fi}
END;
CREATE TRIGGER summary_images_insert AFTER INSERT ON images BEGIN {ii}
END;
CREATE TRIGGER summary_images_delete AFTER DELETE ON images BEGIN {id}
END;
CREATE TRIGGER summary_images_update AFTER UPDATE OF verdict, digest ON images
    WHEN OLD.verdict IS NOT NEW.verdict OR OLD.digest IS NOT NEW.digest BEGIN {id}{ii}
END;
CREATE TRIGGER summary_tags_insert AFTER INSERT ON tags
    WHEN {new_pairs} = 1 BEGIN {ti}
END;
CREATE TRIGGER summary_tags_delete AFTER DELETE ON tags
    WHEN {old_pairs} = 0 BEGIN {td}
END;
CREATE TRIGGER summary_tags_update_old AFTER UPDATE ON tags
    WHEN {moved} AND {old_pairs} = 0 BEGIN {td}
END;
CREATE TRIGGER summary_tags_update_new AFTER UPDATE ON tags
    WHEN {moved} AND {new_pairs} = 1 BEGIN {ti}
END;
",
        tables = tables(Dialect::Sqlite),
        backfill = backfill(Dialect::Sqlite),
        fi = finding("NEW", 1),
        fd = finding("OLD", -1),
        ii = image("NEW", 1),
        id = image("OLD", -1),
        ti = listing("NEW", 1),
        td = listing("OLD", -1),
        new_pairs = pairs("NEW"),
        old_pairs = pairs("OLD"),
    )
}

/// What PostgreSQL's version 5 adds: the counters, filled, the functions
/// that keep them and the statement-level triggers that call those.
pub(super) fn postgres_migration() -> String {
    format!(
        "{tables}
{backfill}
-- A change of findings (or listings, or verdicts) of one image: `name` is a
-- package (a repository; unused), `key` a severity|fix_state (unused; a
-- verdict), `n` how many rows came (positive) or went (negative).
CREATE TYPE summary_change AS (digest text, name text, key text, n bigint);
-- What one image adds to a name's counters.
CREATE TYPE summary_step AS (digest text, name text, images bigint, findings bigint);

-- Locks the images' rows (in digest order) as an UPDATE of them would:
-- every trigger does this before reading tags or findings, so one image's
-- counters and its listings change one transaction at a time. The scan
-- and the rescan hold these locks already (they update the image first).
CREATE FUNCTION summary_lock(digests text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM images WHERE digest = ANY (digests) ORDER BY digest FOR NO KEY UPDATE;
END $$;

-- Folds the deltas into summary_counts, unless another transaction is
-- folding (then it does). Returns whether it folded.
CREATE FUNCTION summary_fold() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock({fold_lock}) THEN
        RETURN false;
    END IF;
    WITH moved AS (DELETE FROM summary_deltas
                   RETURNING kind, repository, key, images, findings),
    sums AS (SELECT kind, repository, key, sum(images) AS images, sum(findings) AS findings
             FROM moved GROUP BY kind, repository, key
             HAVING sum(images) <> 0 OR sum(findings) <> 0)
    INSERT INTO summary_counts AS c (kind, repository, key, images, findings)
    SELECT kind, repository, key, images, findings FROM sums
    ORDER BY kind, repository, key
    ON CONFLICT (kind, repository, key) DO UPDATE
        SET images = c.images + excluded.images, findings = c.findings + excluded.findings;
    DELETE FROM summary_counts WHERE images = 0 AND findings = 0;
    RETURN true;
END $$;

-- At the commit of a transaction that wrote a delta whose sequence number
-- is a multiple of {fold_every}: the fold then runs once the transaction's
-- own deltas are all written (a rescan's deletions and insertions of the
-- same findings cancel before they reach summary_counts), and holds the
-- fold's lock only for the commit.
CREATE FUNCTION summary_fold_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction (the setting is the transaction's).
    IF current_setting('trawl_watch.folded', true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('trawl_watch.folded', 'yes', true);
    PERFORM summary_fold();
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER summary_fold AFTER INSERT ON summary_deltas
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.seq % {fold_every} = 0)
    EXECUTE FUNCTION summary_fold_at_commit();

CREATE FUNCTION summary_findings(ch summary_change[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    totals summary_step[];
    packages summary_step[];
BEGIN
    IF coalesce(cardinality(ch), 0) = 0 THEN RETURN; END IF;
    PERFORM summary_lock(ARRAY(SELECT c.digest FROM unnest(ch) AS c));
    -- Each image's findings, then each (image, package)'s:
    -- the 0-to-some transitions are image counts.
    WITH d AS (SELECT c.digest, sum(c.n)::bigint AS n FROM unnest(ch) AS c GROUP BY c.digest),
    up AS (INSERT INTO summary_images AS s (digest, findings)
           SELECT d.digest, d.n FROM d ORDER BY d.digest
           ON CONFLICT (digest) DO UPDATE SET findings = s.findings + excluded.findings
           RETURNING s.digest, s.findings)
    SELECT array_agg(ROW(up.digest, '', sign(up.findings) - sign(up.findings - d.n), d.n)::summary_step)
        INTO totals
        FROM up JOIN d ON d.digest = up.digest WHERE d.n <> 0;
    WITH p AS (SELECT c.digest, c.name, sum(c.n)::bigint AS n FROM unnest(ch) AS c
               GROUP BY c.digest, c.name HAVING sum(c.n) <> 0),
    up AS (INSERT INTO summary_packages AS s (digest, package, findings)
           SELECT p.digest, p.name, p.n FROM p ORDER BY p.digest, p.name
           ON CONFLICT (digest, package) DO UPDATE SET findings = s.findings + excluded.findings
           RETURNING s.digest, s.package, s.findings)
    SELECT array_agg(ROW(up.digest, up.package, sign(up.findings) - sign(up.findings - p.n), p.n)::summary_step)
        INTO packages
        FROM up JOIN p ON p.digest = up.digest AND p.name = up.package;
    DELETE FROM summary_packages AS s USING unnest(packages) AS p
        WHERE s.digest = p.digest AND s.package = p.name AND s.findings = 0;
    DELETE FROM summary_images AS s USING unnest(totals) AS t
        WHERE s.digest = t.digest AND s.findings = 0;
    INSERT INTO summary_deltas (kind, repository, key, images, findings)
    WITH r AS (SELECT DISTINCT t.repository, t.digest FROM tags AS t
               WHERE t.digest = ANY (ARRAY(SELECT DISTINCT c.digest FROM unnest(ch) AS c))),
    s AS (SELECT c.digest, c.key, sum(c.n) AS n FROM unnest(ch) AS c
          GROUP BY c.digest, c.key HAVING sum(c.n) <> 0),
    p AS (SELECT * FROM unnest(packages)),
    t AS (SELECT * FROM unnest(totals)),
    all_deltas AS (
        SELECT 'S'::text AS kind, ''::text AS repository, s.key, 0::numeric AS images,
               sum(s.n) AS findings
            FROM s GROUP BY s.key
        UNION ALL SELECT 'P', '', p.name, sum(p.images), sum(p.findings) FROM p GROUP BY p.name
        UNION ALL SELECT 's', r.repository, s.key, 0, sum(s.n)
            FROM s JOIN r ON r.digest = s.digest GROUP BY r.repository, s.key
        UNION ALL SELECT 'p', r.repository, p.name, sum(p.images), sum(p.findings)
            FROM p JOIN r ON r.digest = p.digest GROUP BY r.repository, p.name
        UNION ALL SELECT 'r', r.repository, '', sum(t.images), sum(t.findings)
            FROM t JOIN r ON r.digest = t.digest GROUP BY r.repository)
    SELECT kind, repository, key, images, findings FROM all_deltas
        WHERE images <> 0 OR findings <> 0;
END $$;

CREATE FUNCTION summary_listings(ch summary_change[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    pairs summary_step[];
BEGIN
    IF coalesce(cardinality(ch), 0) = 0 THEN RETURN; END IF;
    PERFORM summary_lock(ARRAY(SELECT c.digest FROM unnest(ch) AS c));
    -- A repository's first listing of an image adds the image there, its
    -- last one takes it away (counted after the lock, on a new snapshot).
    SELECT array_agg(ROW(x.digest, x.repository, sign(x.now) - sign(x.now - x.n), 0)::summary_step)
        INTO pairs
        FROM (SELECT c.digest, c.name AS repository, sum(c.n) AS n,
                     (SELECT count(*) FROM tags AS t
                      WHERE t.repository = c.name AND t.digest = c.digest) AS now
              FROM unnest(ch) AS c GROUP BY c.digest, c.name) AS x;
    INSERT INTO summary_deltas (kind, repository, key, images, findings)
    WITH p AS (SELECT * FROM unnest(pairs) WHERE images <> 0)
    SELECT 'v', p.name, coalesce(i.verdict, 'not_scanned'), p.images, 0
        FROM p JOIN images AS i ON i.digest = p.digest
    UNION ALL
    SELECT 's', p.name, f.severity || '|' || f.fix_state, 0, p.images * count(*)
        FROM p JOIN findings AS f ON f.digest = p.digest AND NOT f.suppressed
        GROUP BY p.name, p.digest, p.images, f.severity, f.fix_state
    UNION ALL
    SELECT 'p', p.name, k.package, p.images, p.images * k.findings
        FROM p JOIN summary_packages AS k ON k.digest = p.digest AND k.findings > 0
    UNION ALL
    SELECT 'r', p.name, '', p.images, p.images * s.findings
        FROM p JOIN summary_images AS s ON s.digest = p.digest AND s.findings > 0;
END $$;

CREATE FUNCTION summary_verdicts(ch summary_change[], listed boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(ch), 0) = 0 THEN RETURN; END IF;
    IF listed THEN
        PERFORM summary_lock(ARRAY(SELECT c.digest FROM unnest(ch) AS c));
    END IF;
    INSERT INTO summary_deltas (kind, repository, key, images, findings)
    WITH c AS (SELECT c.digest, c.key, sum(c.n) AS n FROM unnest(ch) AS c
               GROUP BY c.digest, c.key HAVING sum(c.n) <> 0),
    r AS (SELECT DISTINCT t.repository, t.digest FROM tags AS t
          WHERE listed AND t.digest = ANY (ARRAY(SELECT c.digest FROM c)))
    SELECT 'V', '', c.key, sum(c.n), 0 FROM c GROUP BY c.key
    UNION ALL
    SELECT 'v', r.repository, c.key, sum(c.n), 0
        FROM c JOIN r ON r.digest = c.digest GROUP BY r.repository, c.key;
END $$;

CREATE FUNCTION summary_findings_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_findings(ARRAY(
        SELECT ROW(digest, package, severity || '|' || fix_state, count(*))::summary_change
        FROM new_rows WHERE NOT suppressed GROUP BY digest, package, severity, fix_state));
    RETURN NULL;
END $$;
CREATE FUNCTION summary_findings_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_findings(ARRAY(
        SELECT ROW(digest, package, severity || '|' || fix_state, -count(*))::summary_change
        FROM old_rows WHERE NOT suppressed GROUP BY digest, package, severity, fix_state));
    RETURN NULL;
END $$;
CREATE FUNCTION summary_findings_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_findings(ARRAY(
        SELECT ROW(digest, package, key, sum(n))::summary_change FROM (
            SELECT digest, package, severity || '|' || fix_state AS key, -1 AS n
                FROM old_rows WHERE NOT suppressed
            UNION ALL
            SELECT digest, package, severity || '|' || fix_state, 1
                FROM new_rows WHERE NOT suppressed) AS x
        GROUP BY digest, package, key HAVING sum(n) <> 0));
    RETURN NULL;
END $$;
CREATE TRIGGER summary_findings_insert AFTER INSERT ON findings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_findings_inserted();
CREATE TRIGGER summary_findings_delete AFTER DELETE ON findings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_findings_deleted();
CREATE TRIGGER summary_findings_update AFTER UPDATE ON findings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_findings_updated();

CREATE FUNCTION summary_tags_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_listings(ARRAY(
        SELECT ROW(digest, repository, '', count(*))::summary_change
        FROM new_rows GROUP BY digest, repository));
    RETURN NULL;
END $$;
CREATE FUNCTION summary_tags_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_listings(ARRAY(
        SELECT ROW(digest, repository, '', -count(*))::summary_change
        FROM old_rows GROUP BY digest, repository));
    RETURN NULL;
END $$;
CREATE FUNCTION summary_tags_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_listings(ARRAY(
        SELECT ROW(digest, repository, '', sum(n))::summary_change FROM (
            SELECT digest, repository, -1 AS n FROM old_rows
            UNION ALL SELECT digest, repository, 1 FROM new_rows) AS x
        GROUP BY digest, repository HAVING sum(n) <> 0));
    RETURN NULL;
END $$;
CREATE TRIGGER summary_tags_insert AFTER INSERT ON tags
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_tags_inserted();
CREATE TRIGGER summary_tags_delete AFTER DELETE ON tags
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_tags_deleted();
CREATE TRIGGER summary_tags_update AFTER UPDATE ON tags
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_tags_updated();

-- A new image has no listing yet and a deleted one none left (the tags'
-- foreign key): only a verdict that changes moves repositories' counts.
CREATE FUNCTION summary_images_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_verdicts(ARRAY(
        SELECT ROW(digest, '', coalesce(verdict, 'not_scanned'), 1)::summary_change
        FROM new_rows), false);
    RETURN NULL;
END $$;
CREATE FUNCTION summary_images_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_verdicts(ARRAY(
        SELECT ROW(digest, '', coalesce(verdict, 'not_scanned'), -1)::summary_change
        FROM old_rows), false);
    DELETE FROM summary_images WHERE digest IN (SELECT digest FROM old_rows) AND findings = 0;
    RETURN NULL;
END $$;
-- Per row, and only for a verdict that changed: an UPDATE of images
-- rewrites reports and inventories, which a transition table would copy.
CREATE FUNCTION summary_images_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summary_verdicts(ARRAY[
        ROW(OLD.digest, '', coalesce(OLD.verdict, 'not_scanned'), -1)::summary_change,
        ROW(NEW.digest, '', coalesce(NEW.verdict, 'not_scanned'), 1)::summary_change], true);
    RETURN NULL;
END $$;
CREATE TRIGGER summary_images_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_images_inserted();
CREATE TRIGGER summary_images_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_images_deleted();
CREATE TRIGGER summary_images_update AFTER UPDATE OF digest, verdict ON images
    FOR EACH ROW
    WHEN (OLD.verdict IS DISTINCT FROM NEW.verdict OR OLD.digest IS DISTINCT FROM NEW.digest)
    EXECUTE FUNCTION summary_images_updated();
",
        tables = tables(Dialect::Postgres),
        backfill = backfill(Dialect::Postgres),
        fold_every = FOLD_EVERY_5,
        fold_lock = FOLD_LOCK,
    )
}

/// The prefixes above a repository name, whose totals (`v+`, `s+`, `p+`)
/// its counters add to: the part before each `/` in it — with the name
/// itself, every prefix that covers it ([`super::query::Scope`]). SQLite:
/// a subquery over `name` (an expression), as triggers can run it.
fn sqlite_prefixes(name: &str) -> String {
    format!(
        "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < length({name}))
          SELECT substr({name}, 1, i - 1) AS prefix FROM n WHERE substr({name}, i, 1) = '/')"
    )
}

/// What SQLite's version 9 adds: each prefix's totals (`v+`, `s+`, `p+`
/// rows of `summary_counts`: the sums of the `v`, `s`, `p` rows of the
/// repositories below it, `prefix/…`; its own name's are its `v`, `s`,
/// `p` rows), filled, and the triggers on `summary_counts`
/// that carry every change of a repository's row to its prefixes' totals.
/// A scoped summary then reads a prefix's few hundred totals instead of
/// every row of its thousand repositories.
pub(super) fn sqlite_prefix_migration() -> String {
    let upsert = "ON CONFLICT (kind, repository, key) DO UPDATE SET
        images = images + excluded.images, findings = findings + excluded.findings";
    // The row `r`'s change (`images`, `findings`) carried to its prefixes.
    let carry = |r: &str, images: &str, findings: &str| {
        format!(
            "
    INSERT INTO summary_counts (kind, repository, key, images, findings)
    SELECT {r}.kind || '+', a.prefix, {r}.key, {images}, {findings}
    FROM {prefixes} AS a WHERE true
    {upsert};",
            prefixes = sqlite_prefixes(&format!("{r}.repository"))
        )
    };
    format!(
        "
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
                        WHERE i < (SELECT coalesce(max(length(repository)), 0) FROM summary_counts))
INSERT INTO summary_counts (kind, repository, key, images, findings)
SELECT c.kind || '+', substr(c.repository, 1, n.i - 1) AS prefix, c.key, sum(c.images),
       sum(c.findings)
FROM summary_counts AS c JOIN n ON n.i <= length(c.repository)
    AND substr(c.repository, n.i, 1) = '/'
WHERE c.kind IN ('v', 's', 'p')
GROUP BY c.kind, prefix, c.key
HAVING sum(c.images) <> 0 OR sum(c.findings) <> 0;
CREATE TRIGGER summary_prefix_insert AFTER INSERT ON summary_counts
    WHEN NEW.kind IN ('v', 's', 'p') BEGIN {insert}
END;
CREATE TRIGGER summary_prefix_update AFTER UPDATE ON summary_counts
    WHEN NEW.kind IN ('v', 's', 'p') BEGIN {update}
END;
CREATE TRIGGER summary_prefix_delete AFTER DELETE ON summary_counts
    WHEN OLD.kind IN ('v', 's', 'p') AND (OLD.images <> 0 OR OLD.findings <> 0) BEGIN {delete}
END;
",
        insert = carry("NEW", "NEW.images", "NEW.findings"),
        update = carry(
            "NEW",
            "NEW.images - OLD.images",
            "NEW.findings - OLD.findings"
        ),
        delete = carry("OLD", "-OLD.images", "-OLD.findings"),
    )
}

/// What PostgreSQL's version 6 adds: the byte-wise index of the tags'
/// repositories (the scope's ranges), and each prefix's totals (`v+`,
/// `s+`, `p+`, as SQLite's version 9), filled; the fold adds the deltas
/// of a repository to its prefixes' totals as it adds them to its own
/// counters. A scoped summary reads a prefix's totals and the deltas of
/// its repositories not folded yet.
pub(super) fn postgres_prefix_migration() -> String {
    format!(
        "
CREATE INDEX tags_by_repository ON tags (repository COLLATE \"C\", digest);

-- The prefixes above a repository name, whose totals its counters add
-- to: the part before each '/' in it.
CREATE FUNCTION summary_prefixes(name text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT left(name, i - 1) FROM generate_series(1, length(name)) AS i
        WHERE substr(name, i, 1) = '/'
$$;

INSERT INTO summary_counts (kind, repository, key, images, findings)
SELECT c.kind || '+', a.prefix, c.key, sum(c.images), sum(c.findings)
FROM summary_counts AS c CROSS JOIN LATERAL summary_prefixes(c.repository) AS a(prefix)
WHERE c.kind IN ('v', 's', 'p')
GROUP BY c.kind, a.prefix, c.key
HAVING sum(c.images) <> 0 OR sum(c.findings) <> 0;

CREATE OR REPLACE FUNCTION summary_fold() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock({fold_lock}) THEN
        RETURN false;
    END IF;
    WITH moved AS (DELETE FROM summary_deltas
                   RETURNING kind, repository, key, images, findings),
    sums AS (SELECT kind, repository, key, sum(images) AS images, sum(findings) AS findings
             FROM moved GROUP BY kind, repository, key
             HAVING sum(images) <> 0 OR sum(findings) <> 0),
    totals AS (SELECT s.kind || '+' AS kind, a.prefix COLLATE \"C\" AS repository, s.key,
                      sum(s.images) AS images, sum(s.findings) AS findings
               FROM sums AS s CROSS JOIN LATERAL summary_prefixes(s.repository) AS a(prefix)
               WHERE s.kind IN ('v', 's', 'p')
               GROUP BY 1, 2, 3
               HAVING sum(s.images) <> 0 OR sum(s.findings) <> 0)
    INSERT INTO summary_counts AS c (kind, repository, key, images, findings)
    SELECT kind, repository, key, images, findings
    FROM (SELECT * FROM sums UNION ALL SELECT * FROM totals) AS x
    ORDER BY kind, repository, key
    ON CONFLICT (kind, repository, key) DO UPDATE
        SET images = c.images + excluded.images, findings = c.findings + excluded.findings;
    DELETE FROM summary_counts WHERE images = 0 AND findings = 0;
    RETURN true;
END $$;
",
        fold_lock = FOLD_LOCK,
    )
}

/// What PostgreSQL's version 7 changes: the counters follow the images'
/// aggregates (`images.counts`, [`super::FindingCounts::json`]), written
/// with each image's results, instead of its finding rows. The column is
/// added and back-filled from the rows; the triggers on `findings` and the
/// per-image tables (`summary_images`, `summary_packages`) go; triggers on
/// `images` append the deltas of a change of `counts` or `verdict` (the
/// old row's counters taken away, the new one's added, fanned out to the
/// repositories listing the image); the `tags` triggers add or take away
/// an image's counters as its `counts` say. The counters themselves
/// (`summary_counts`, `summary_deltas`, the fold) are as they were: they
/// were right for the rows, and `counts` is the rows' aggregate.
pub(super) fn postgres_image_counts_migration() -> String {
    // The counter rows one image adds (`n` = 1) or takes away (-1), of
    // the rows `c` (`digest`, `n`, `verdict`, `counts`), fanned out to the
    // repositories listing it when `listed` (an image inserted has no
    // listing yet, one deleted has none left: the tags' foreign key).
    let deltas = |c: &str, listed: bool| {
        let repositories = if listed {
            "
    UNION ALL
    SELECT x.kind, r.repository, x.key, sum(x.images), sum(x.findings)
    FROM x JOIN (SELECT DISTINCT t.repository, t.digest FROM tags AS t
                 WHERE t.digest IN (SELECT c.digest FROM c)) AS r ON r.digest = x.digest
    GROUP BY x.kind, r.repository, x.key
    HAVING sum(x.images) <> 0 OR sum(x.findings) <> 0"
        } else {
            ""
        };
        format!(
            "
    INSERT INTO summary_deltas (kind, repository, key, images, findings)
    WITH c AS ({c}),
    x AS (SELECT c.digest, e.kind, e.key, sum(c.n * e.images) AS images,
                 sum(c.n * e.findings) AS findings
          FROM c CROSS JOIN LATERAL summary_expand(c.verdict, c.counts) AS e
          GROUP BY c.digest, e.kind, e.key
          HAVING sum(c.n * e.images) <> 0 OR sum(c.n * e.findings) <> 0)
    SELECT upper(x.kind), '', x.key, sum(x.images), sum(x.findings) FROM x
    WHERE x.kind <> 'r'
    GROUP BY x.kind, x.key
    HAVING sum(x.images) <> 0 OR sum(x.findings) <> 0{repositories};"
        )
    };
    // An image row whose counters did not change is left out of an update.
    let changed = |from: &str, to: &str| {
        format!(
            "SELECT a.digest, a.verdict, a.counts FROM {from} AS a
             WHERE NOT EXISTS (SELECT 1 FROM {to} AS b WHERE b.digest = a.digest
                               AND b.verdict IS NOT DISTINCT FROM a.verdict
                               AND b.counts = a.counts)"
        )
    };
    format!(
        "
DROP TRIGGER IF EXISTS summary_findings_insert ON findings;
DROP TRIGGER IF EXISTS summary_findings_delete ON findings;
DROP TRIGGER IF EXISTS summary_findings_update ON findings;
DROP TRIGGER IF EXISTS summary_images_insert ON images;
DROP TRIGGER IF EXISTS summary_images_delete ON images;
DROP TRIGGER IF EXISTS summary_images_update ON images;
DROP FUNCTION IF EXISTS summary_findings_inserted(), summary_findings_deleted(),
    summary_findings_updated(), summary_findings(summary_change[]), summary_images_inserted(),
    summary_images_deleted(), summary_images_updated(), summary_verdicts(summary_change[], boolean);
DROP TABLE IF EXISTS summary_images, summary_packages;

-- An image's findings that count, per 's' || severity|fix_state and per
-- 'p' || package (the store writes it with the image's results).
ALTER TABLE images ADD COLUMN counts jsonb NOT NULL DEFAULT '{{}}';
UPDATE images AS i SET counts = a.counts
FROM (SELECT digest, jsonb_object_agg(k, n) AS counts
      FROM (SELECT digest, 's' || severity || '|' || fix_state AS k, count(*) AS n
            FROM findings WHERE NOT suppressed GROUP BY digest, severity, fix_state
            UNION ALL
            SELECT digest, 'p' || package, count(*)
            FROM findings WHERE NOT suppressed GROUP BY digest, package) AS f
      GROUP BY digest) AS a
WHERE i.digest = a.digest;

-- The counter rows of one image (kind in lower case, key, images,
-- findings): its verdict ('v'), its findings per severity|fix_state
-- ('s') and per package ('p', an image if it has any there), and its
-- findings in all ('r', an image if any).
-- (integers: an image's counts are small, and a sum of integers is a
-- bigint, not a numeric.)
CREATE FUNCTION summary_expand(verdict text, counts jsonb)
RETURNS TABLE (kind text, key text, images integer, findings integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'v', coalesce(verdict, 'not_scanned'), 1, 0
    UNION ALL
    SELECT left(e.key, 1), substr(e.key, 2),
           CASE WHEN left(e.key, 1) = 'p' AND e.value::integer > 0 THEN 1 ELSE 0 END,
           e.value::integer
    FROM jsonb_each(counts) AS e
    UNION ALL
    SELECT 'r', '', 1, t.n
    FROM (SELECT sum(e.value::integer)::integer AS n FROM jsonb_each(counts) AS e
          WHERE left(e.key, 1) = 's') AS t
    WHERE t.n > 0
$$;

CREATE OR REPLACE FUNCTION summary_listings(ch summary_change[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    pairs summary_step[];
BEGIN
    IF coalesce(cardinality(ch), 0) = 0 THEN RETURN; END IF;
    PERFORM summary_lock(ARRAY(SELECT c.digest FROM unnest(ch) AS c));
    -- A repository's first listing of an image adds the image there, its
    -- last one takes it away (counted after the lock, on a new snapshot).
    SELECT array_agg(ROW(x.digest, x.repository, sign(x.now) - sign(x.now - x.n), 0)::summary_step)
        INTO pairs
        FROM (SELECT c.digest, c.name AS repository, sum(c.n) AS n,
                     (SELECT count(*) FROM tags AS t
                      WHERE t.repository = c.name AND t.digest = c.digest) AS now
              FROM unnest(ch) AS c GROUP BY c.digest, c.name) AS x;
    INSERT INTO summary_deltas (kind, repository, key, images, findings)
    SELECT e.kind, p.name, e.key, p.images * e.images, p.images * e.findings
    FROM unnest(pairs) AS p JOIN images AS i ON i.digest = p.digest
    CROSS JOIN LATERAL summary_expand(i.verdict, i.counts) AS e
    WHERE p.images <> 0;
END $$;

-- The image rows of the statement are locked by it (an INSERT, a
-- DELETE, an UPDATE): the listings read are those committed before, and
-- a tag move of these images waits for this transaction (summary_lock).
-- Per statement, with transition tables: the deltas of a batch's images
-- are summed before they are written (a row trigger wrote four times as
-- many, in about the same time). Without JIT: the estimates of a batch
-- of thousands of images passed its threshold, and compiling took longer
-- (1.5 s) than running the statement.
CREATE FUNCTION summary_images_inserted() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$
BEGIN{inserted}
    RETURN NULL;
END $$;
CREATE FUNCTION summary_images_deleted() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$
BEGIN{deleted}
    RETURN NULL;
END $$;
CREATE FUNCTION summary_images_updated() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$
BEGIN{updated}
    RETURN NULL;
END $$;
CREATE TRIGGER summary_images_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_images_inserted();
CREATE TRIGGER summary_images_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_images_deleted();
-- Every UPDATE of images (a transition table cannot have a column list):
-- a row whose verdict and counts stay is left out at once.
CREATE TRIGGER summary_images_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION summary_images_updated();
",
        inserted = deltas(
            "SELECT digest, 1 AS n, verdict, counts FROM new_rows",
            false
        ),
        deleted = deltas(
            "SELECT digest, -1 AS n, verdict, counts FROM old_rows",
            false
        ),
        updated = deltas(
            &format!(
                "SELECT o.digest, -1 AS n, o.verdict, o.counts FROM ({old}) AS o
                 UNION ALL
                 SELECT w.digest, 1, w.verdict, w.counts FROM ({new}) AS w",
                old = changed("old_rows", "new_rows"),
                new = changed("new_rows", "old_rows"),
            ),
            true
        ),
    )
}

/// The fold's sums (versions 9 and 11): the deltas taken (`moved`),
/// summed per counter row (`sums`), and the totals of every prefix above
/// their repositories (`above`, each repository's prefixes worked out
/// once; `totals`).
const FOLD_SUMS: &str = "    WITH moved AS (DELETE FROM summary_deltas
                   RETURNING kind, repository, key, images, findings),
    sums AS (SELECT kind, repository, key, sum(images) AS images, sum(findings) AS findings
             FROM moved GROUP BY kind, repository, key
             HAVING sum(images) <> 0 OR sum(findings) <> 0),
    above AS MATERIALIZED (
        SELECT r.repository, a.prefix COLLATE \"C\" AS prefix
        FROM (SELECT DISTINCT repository FROM sums WHERE kind IN ('v', 's', 'p')) AS r
        CROSS JOIN LATERAL summary_prefixes(r.repository) AS a(prefix)),
    totals AS (SELECT s.kind || '+' AS kind, a.prefix AS repository, s.key,
                      sum(s.images) AS images, sum(s.findings) AS findings
               FROM sums AS s JOIN above AS a ON a.repository = s.repository
               WHERE s.kind IN ('v', 's', 'p')
               GROUP BY 1, 2, 3
               HAVING sum(s.images) <> 0 OR sum(s.findings) <> 0)";

/// What PostgreSQL's version 9 changes: the fold (as version 6's, with the
/// same sums) finds the prefixes of each repository once, not once per
/// counter row of it, and runs without JIT. Measured on 2,000
/// repositories (a fold of 256 rescanned images' deltas: 3,100 rows of
/// 240 repositories), the prefix totals took 56 ms of a 110 ms fold:
/// `summary_prefixes` (a set-returning SQL function, not inlined as it is
/// `STRICT`) was called for every row, 17 µs a call; called per
/// repository they take 6 ms. The planner inlines a CTE read once, and
/// then calls the function after the join again, so the repositories'
/// prefixes are `MATERIALIZED`. JIT off as in the triggers: the scan of
/// the deltas is estimated from the table's pages, which a big batch
/// leaves many (dead, until a vacuum); after 1.4 million deltas written
/// and folded, the same 3,100-row fold was planned at 360,000 and
/// compiled (inlined, optimized): 426 ms, against 73 ms without JIT.
pub(super) fn postgres_fold_migration() -> String {
    format!(
        "
CREATE OR REPLACE FUNCTION summary_fold() RETURNS boolean LANGUAGE plpgsql
SET jit = off AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock({fold_lock}) THEN
        RETURN false;
    END IF;
{sums}
    INSERT INTO summary_counts AS c (kind, repository, key, images, findings)
    SELECT kind, repository, key, images, findings
    FROM (SELECT * FROM sums UNION ALL SELECT * FROM totals) AS x
    ORDER BY kind, repository, key
    ON CONFLICT (kind, repository, key) DO UPDATE
        SET images = c.images + excluded.images, findings = c.findings + excluded.findings;
    DELETE FROM summary_counts WHERE images = 0 AND findings = 0;
    RETURN true;
END $$;
",
        fold_lock = FOLD_LOCK,
        sums = FOLD_SUMS,
    )
}

/// The deltas of an `UPDATE` of `images` from its rows `c` (counted out
/// or in whole: `digest`, `n`, `verdict`, `counts`) and `f` (whose change
/// holds: `digest`, `ov`, `nv`, `had`, `has`, `w`, `nw`), fanned out to the
/// repositories listing the image: the end of the trigger's statement, the
/// same in versions 11 and 13.
const UPDATED_DELTAS: &str = "    -- A key of `now` not in `was` is one whose count stayed.
    fk AS (SELECT f.digest, left(k.key, 1) AS kind, substr(k.key, 2) AS key,
                  CASE WHEN f.w ? k.key
                       THEN coalesce((k.value #>> '{}')::integer, 0)
                            - coalesce((f.w->>k.key)::integer, 0)
                       ELSE 0 END AS findings,
                  CASE WHEN f.w ? k.key
                       THEN (k.value <> 'null')::integer - (f.w->k.key <> 'null')::integer
                       ELSE 0 END AS listed
           FROM f CROSS JOIN LATERAL jsonb_each(f.nw) AS k),
    x AS (SELECT c.digest, e.kind, e.key, sum(c.n * e.images) AS images,
                 sum(c.n * e.findings) AS findings
          FROM c CROSS JOIN LATERAL summary_expand(c.verdict, c.counts) AS e
          GROUP BY c.digest, e.kind, e.key
          HAVING sum(c.n * e.images) <> 0 OR sum(c.n * e.findings) <> 0
          UNION ALL
          SELECT fk.digest, fk.kind, fk.key, CASE WHEN fk.kind = 'p' THEN fk.listed ELSE 0 END,
                 fk.findings
          FROM fk WHERE fk.findings <> 0 OR (fk.kind = 'p' AND fk.listed <> 0)
          UNION ALL
          SELECT f.digest, 'r', '', f.has::integer - f.had::integer, coalesce(s.findings, 0)
          FROM f LEFT JOIN (SELECT fk.digest, sum(fk.findings) AS findings FROM fk
                            WHERE fk.kind = 's' GROUP BY fk.digest) AS s ON s.digest = f.digest
          WHERE f.has <> f.had OR s.findings <> 0
          UNION ALL
          SELECT f.digest, 'v', coalesce(v.verdict, 'not_scanned'), v.n, 0
          FROM f CROSS JOIN LATERAL (VALUES (f.ov, -1), (f.nv, 1)) AS v(verdict, n)
          WHERE f.ov IS DISTINCT FROM f.nv)
    SELECT upper(x.kind), '', x.key, sum(x.images), sum(x.findings) FROM x
    WHERE x.kind <> 'r'
    GROUP BY x.kind, x.key
    HAVING sum(x.images) <> 0 OR sum(x.findings) <> 0
    UNION ALL
    SELECT x.kind, r.repository, x.key, sum(x.images), sum(x.findings)
    FROM x JOIN (SELECT DISTINCT t.repository, t.digest FROM tags AS t
                 WHERE t.digest IN (SELECT c.digest FROM c UNION ALL SELECT f.digest FROM f)) AS r
        ON r.digest = x.digest
    GROUP BY x.kind, r.repository, x.key
    HAVING sum(x.images) <> 0 OR sum(x.findings) <> 0;
";

/// What PostgreSQL's version 11 changes: a writer may say how an image's
/// `counts` changed (`images.counts_change`, written in the same UPDATE:
/// [`super::FindingCounts::change_from`]), and the `images` update trigger
/// then takes the deltas from that change, after checking it against the
/// old and the new `counts`, instead of expanding both documents whole.
///
/// Measured (a replay of the bench's day's update, 2,000 images of ~70
/// keys each, ~15 of which change, in batches of 256): the trigger spent
/// 50 of its 66 ms a batch expanding both documents of every image
/// (`jsonb_each`, 36,000 rows a batch) and summing them per image to find
/// the ~3,700 that differ. The rescan knows both sides: it reads the old
/// `counts` with the rows it locks and computes the change in Rust.
///
/// The database stays the keeper of the counters: the change is only a
/// claim, checked exactly with whole-document operations (C, no row per
/// key): with `was` and `now` giving the old and the new count of each
/// changed key (`null`: none), the old document with `now` laid over it
/// must be the new one and the new one with `was` laid over it the old one
/// (`jsonb_strip_nulls(old || now) = new` and `jsonb_strip_nulls(new ||
/// was) = old`), which holds exactly when the two agree outside the keys
/// and `was`/`now` are their values there. A row with no change, a wrong
/// or a stale one (a writer that does not know the column leaves the last
/// one there) is expanded whole as before: forgetting the change costs
/// time, never a count. A row whose counts stay (a verdict that changes)
/// takes only its verdict's deltas.
///
/// Version 11 also lets the fold update `summary_counts` in place (HOT:
/// no index entry written per update). Every fold updated every row it
/// touched out of place, as indexes covered `images` and `findings`: the
/// top-N indexes of the `P` and `r` rows, and `summary_counts_zero` (its
/// predicate) for the deletion of zero rows. The table is now partitioned
/// by kind: `P` and `r` (a few thousand rows, read ten at a time from the
/// top) keep their indexes in `summary_counts_ranked`; every other kind
/// (the bulk: per repository and per prefix) is in `summary_counts_rest`
/// with no index but the primary key, and room left on each page
/// (`fillfactor` 80) for the next version of a row. The fold deletes the
/// rows it brought to zero by their keys (from its upsert's `RETURNING`)
/// instead of through an index. Measured on the same replay's fold
/// (30,003 deltas; CPU from `log_statement_stats`): 0.37-0.41 s before,
/// 0.28-0.31 s after; the replay's UPDATE and COMMIT together 0.98-1.01 s
/// before version 11, 0.86-0.88 s with the change alone, 0.74-0.77 s with
/// both (load average 6-9). The summary's SQL is unchanged: a read of one
/// kind reads one partition.
pub(super) fn postgres_counts_change_migration() -> String {
    // Rows of old_rows (`o`) and new_rows (`n`) whose verdict or counts
    // changed.
    let changed = |from: &str, to: &str| {
        format!(
            "SELECT a.digest, a.verdict, a.counts FROM {from} AS a
             WHERE NOT EXISTS (SELECT 1 FROM {to} AS b WHERE b.digest = a.digest
                               AND b.verdict IS NOT DISTINCT FROM a.verdict
                               AND b.counts = a.counts)
             AND NOT EXISTS (SELECT 1 FROM f WHERE f.digest = a.digest)"
        )
    };
    let old = format!(
        "SELECT o.digest, -1 AS n, o.verdict, o.counts FROM ({}) AS o",
        changed("old_rows", "new_rows")
    );
    let new = format!(
        "SELECT w.digest, 1, w.verdict, w.counts FROM ({}) AS w",
        changed("new_rows", "old_rows")
    );
    format!(
        "
ALTER TABLE images ADD COLUMN IF NOT EXISTS counts_change jsonb;

-- An UPDATE of images: the rows whose change is given and holds (`f`,
-- the keys of `now`: their old count is `was`'s), and the others (`c`,
-- old counters out and new ones in, expanded whole), fanned out to the
-- repositories listing the image.
CREATE OR REPLACE FUNCTION summary_images_updated() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$
BEGIN
    INSERT INTO summary_deltas (kind, repository, key, images, findings)
    WITH f AS MATERIALIZED (
        SELECT n.digest, o.verdict AS ov, n.verdict AS nv, o.counts <> '{{}}' AS had,
               n.counts <> '{{}}' AS has,
               CASE WHEN o.counts = n.counts THEN '{{}}' ELSE n.counts_change->'was' END AS w,
               CASE WHEN o.counts = n.counts THEN '{{}}' ELSE n.counts_change->'now' END AS nw
        FROM new_rows AS n JOIN old_rows AS o ON o.digest = n.digest
        WHERE (o.verdict IS DISTINCT FROM n.verdict OR o.counts <> n.counts)
        AND (o.counts = n.counts
             OR (jsonb_typeof(n.counts_change->'was') = 'object'
                 AND jsonb_typeof(n.counts_change->'now') = 'object'
                 AND jsonb_strip_nulls(o.counts || (n.counts_change->'now')) = n.counts
                 AND jsonb_strip_nulls(n.counts || (n.counts_change->'was')) = o.counts))),
    c AS ({old} UNION ALL {new}),
{updated_deltas}    RETURN NULL;
END $$;

-- The counters by kind: the ranked rows (P, r) with their top-N indexes,
-- the rest with none but the key, so that the fold updates them in place.
-- Once (the version applies again over itself in tests).
DO $$
BEGIN
    IF (SELECT c.relkind FROM pg_class AS c
        WHERE c.oid = to_regclass('summary_counts')) = 'r' THEN
        ALTER TABLE summary_counts RENAME TO summary_counts_9;
        ALTER INDEX summary_counts_pkey RENAME TO summary_counts_9_pkey;
        DROP INDEX summary_counts_zero, summary_top_packages, summary_top_repositories;
        CREATE TABLE summary_counts (
            kind text NOT NULL,
            repository text COLLATE \"C\" NOT NULL,
            key text COLLATE \"C\" NOT NULL,
            images bigint NOT NULL,
            findings bigint NOT NULL,
            PRIMARY KEY (kind, repository, key)
        ) PARTITION BY LIST (kind);
        CREATE TABLE summary_counts_ranked PARTITION OF summary_counts FOR VALUES IN ('P', 'r');
        CREATE TABLE summary_counts_rest PARTITION OF summary_counts DEFAULT
            WITH (fillfactor = 80);
        CREATE INDEX summary_top_packages ON summary_counts_ranked
            (images DESC, findings DESC, key) WHERE kind = 'P';
        CREATE INDEX summary_top_repositories ON summary_counts_ranked
            (findings DESC, images DESC, repository) WHERE kind = 'r';
        INSERT INTO summary_counts SELECT * FROM summary_counts_9 ORDER BY kind, repository, key;
        DROP TABLE summary_counts_9;
        ANALYZE summary_counts;
    END IF;
END $$;

-- Version 9's fold, the rows it brings to zero deleted by their keys.
CREATE OR REPLACE FUNCTION summary_fold() RETURNS boolean LANGUAGE plpgsql
SET jit = off AS $$
DECLARE
    zero_kinds text[];
    zero_repositories text[];
    zero_keys text[];
BEGIN
    IF NOT pg_try_advisory_xact_lock({fold_lock}) THEN
        RETURN false;
    END IF;
{sums},
    up AS (INSERT INTO summary_counts AS c (kind, repository, key, images, findings)
           SELECT kind, repository, key, images, findings
           FROM (SELECT * FROM sums UNION ALL SELECT * FROM totals) AS x
           ORDER BY kind, repository, key
           ON CONFLICT (kind, repository, key) DO UPDATE
               SET images = c.images + excluded.images, findings = c.findings + excluded.findings
           RETURNING c.kind, c.repository, c.key, c.images, c.findings)
    SELECT array_agg(up.kind), array_agg(up.repository), array_agg(up.key)
        INTO zero_kinds, zero_repositories, zero_keys
        FROM up WHERE up.images = 0 AND up.findings = 0;
    IF zero_kinds IS NOT NULL THEN
        DELETE FROM summary_counts AS c
            USING unnest(zero_kinds, zero_repositories, zero_keys) AS z(kind, repository, key)
            WHERE c.kind = z.kind AND c.repository = z.repository AND c.key = z.key
            AND c.images = 0 AND c.findings = 0;
    END IF;
    RETURN true;
END $$;
",
        fold_lock = FOLD_LOCK,
        sums = FOLD_SUMS,
        updated_deltas = UPDATED_DELTAS,
    )
}

/// What PostgreSQL's version 12 changes in the deltas (with `images`'
/// storage, in the store's module): a fold every [`FOLD_EVERY`] (8,192)
/// deltas instead of 2,048, and no primary key on `summary_deltas`.
///
/// - A rescan writes about 15 deltas an image, nearly all per repository,
///   and a fold sums the rows of the repositories' prefixes above them
///   and the registry's: a fold of 4 times the deltas covers 4 times the
///   images with the same prefix and registry rows. Measured on 10,000
///   images (the watch bench's day's update, 2 processes): the counter
///   rows it updated went from 118,000 to 106,000 and the time in
///   `COMMIT` (where the folds run) from 2.7 to 2.5 s. A summary sums the
///   deltas not folded yet: at most about 8,000 rows, a few milliseconds.
/// - Nothing reads a delta by its sequence number: the fold takes every
///   delta it sees and a summary sums them all. The key's index cost an
///   entry for every delta written (15 an image) and its vacuum.
pub(super) fn postgres_deltas_migration() -> String {
    format!(
        "
ALTER TABLE summary_deltas DROP CONSTRAINT IF EXISTS summary_deltas_pkey;
DROP TRIGGER IF EXISTS summary_fold ON summary_deltas;
CREATE CONSTRAINT TRIGGER summary_fold AFTER INSERT ON summary_deltas
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.seq % {FOLD_EVERY} = 0)
    EXECUTE FUNCTION summary_fold_at_commit();
"
    )
}

/// What PostgreSQL's version 13 changes in the trigger of an `UPDATE` of
/// `images` (version 11's, [`postgres_counts_change_migration`]): the
/// same deltas, from one pass over the statement's rows.
///
/// Version 11 joined the old and new rows for the rows whose change is
/// given (`f`), then found the others (`c`) with two anti-joins, old rows
/// against new and new against old, each comparing the two `counts`
/// documents again and looking the row up in `f`. Every updated row so
/// compared its documents seven times (and each comparison of a compressed
/// document decompresses it): in a rescan, where every row is in `f`, the
/// anti-joins found nothing at the cost of two hash joins. Version 13
/// joins old and new rows once (a full join, so that a row without a
/// partner, which no `UPDATE` of `images` makes, is still counted out or
/// in whole), compares the documents once, keeps the rows whose verdict
/// or counts changed with whether their change holds, and takes `f` and
/// `c` from those. Measured in the watch bench (10,000 images, one run
/// each, alternated): the trigger had been 27% of PostgreSQL's CPU in a
/// day's update with 2 processes; the `UPDATE` statements, trigger
/// included, took 2.9 s instead of 3.5 s there and 1.7 s instead of 1.9
/// s with one process, and PostgreSQL's CPU went from 4.8 to 4.4 s.
pub(super) fn postgres_update_trigger_migration() -> String {
    let rows = "
-- An UPDATE of images: each row paired with its old version once (`j`);
-- those whose verdict or counts changed (`d`), with whether their change
-- is given and holds; the rows where it does (`f`, the keys of `now`:
-- their old count is `was`'s) and the others (`c`, old counters out and
-- new ones in, expanded whole), fanned out to the repositories listing
-- the image.
CREATE OR REPLACE FUNCTION summary_images_updated() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$
BEGIN
    INSERT INTO summary_deltas (kind, repository, key, images, findings)
    WITH j AS MATERIALIZED (
        SELECT coalesce(n.digest, o.digest) AS digest,
               o.digest IS NOT NULL AND n.digest IS NOT NULL AS paired,
               o.verdict AS ov, n.verdict AS nv, o.counts AS oc, n.counts AS nc,
               n.counts_change AS ch, o.counts = n.counts AS same
        FROM new_rows AS n FULL JOIN old_rows AS o ON o.digest = n.digest),
    d AS MATERIALIZED (
        SELECT j.digest, j.ov, j.nv, j.oc, j.nc, j.ch, j.same,
               j.paired AND coalesce(j.same
                   OR (jsonb_typeof(j.ch->'was') = 'object'
                       AND jsonb_typeof(j.ch->'now') = 'object'
                       AND jsonb_strip_nulls(j.oc || (j.ch->'now')) = j.nc
                       AND jsonb_strip_nulls(j.nc || (j.ch->'was')) = j.oc), false) AS holds
        FROM j
        WHERE NOT j.paired OR j.ov IS DISTINCT FROM j.nv OR NOT j.same),
    f AS MATERIALIZED (
        SELECT d.digest, d.ov, d.nv, d.oc <> '{}' AS had, d.nc <> '{}' AS has,
               CASE WHEN d.same THEN '{}' ELSE d.ch->'was' END AS w,
               CASE WHEN d.same THEN '{}' ELSE d.ch->'now' END AS nw
        FROM d WHERE d.holds),
    c AS (SELECT d.digest, -1 AS n, d.ov AS verdict, d.oc AS counts FROM d
          WHERE NOT d.holds AND d.oc IS NOT NULL
          UNION ALL
          SELECT d.digest, 1, d.nv, d.nc FROM d
          WHERE NOT d.holds AND d.nc IS NOT NULL),
";
    [rows, UPDATED_DELTAS, "    RETURN NULL;\nEND $$;\n"].concat()
}

/// The prefixes whose repositories are exactly those of `scope` under
/// `repository`, none of them under another (so each repository is
/// counted once): the intersection of two prefixes' repositories is the
/// deeper one's, or nothing. Empty when the two have none in common.
fn covering_prefixes(scope: &Scope, repository: Option<&str>) -> Vec<String> {
    let trim = |p: &str| p.trim_end_matches('/').to_string();
    let mut found: Vec<String> = match (scope, repository) {
        (Scope::All, None) => Vec::new(),
        (Scope::All, Some(r)) => vec![trim(r)],
        (Scope::Prefixes(ps), None) => ps.iter().map(|p| trim(p)).collect(),
        (Scope::Prefixes(ps), Some(r)) => {
            let r = trim(r);
            ps.iter()
                .filter_map(|p| {
                    let p = trim(p);
                    if under(&r, &p) {
                        Some(r.clone())
                    } else if under(&p, &r) {
                        Some(p)
                    } else {
                        None
                    }
                })
                .collect()
        }
    };
    found.sort();
    found.dedup();
    found
        .iter()
        .filter(|p| !found.iter().any(|q| q != *p && under(p, q)))
        .cloned()
        .collect()
}

/// The summary from the counters: [`super::query`]'s `summary`, in a
/// handful of counter rows.
pub(super) async fn summary(
    db: &impl Rows,
    dialect: Dialect,
    scope: &Scope,
    repository: Option<&str>,
) -> Result<RegistrySummary, StoreError> {
    let mut sql = Sql::new(dialect);
    let sum = |col: &str| match dialect {
        Dialect::Sqlite => format!("sum({col})"),
        Dialect::Postgres => format!("CAST(sum({col}) AS bigint)"),
    };
    let (si, sf) = (sum("images"), sum("findings"));
    let scoped = !matches!(scope, Scope::All) || repository.is_some();
    sql.text = if scoped {
        let prefixes = covering_prefixes(scope, repository);
        if prefixes.is_empty() {
            return Ok(RegistrySummary::default());
        }
        // The totals of each prefix (`v+`, `s+`, `p+`: a few hundred rows
        // however many repositories are below it) and its own name's
        // counters, the deltas of its repositories not folded yet
        // (PostgreSQL; a few thousand rows in all), and its repositories'
        // `r` rows, one per repository.
        let exact: Vec<String> = prefixes
            .iter()
            .map(|p| format!("repository = {}", sql.text_param(p)))
            .collect();
        let exact = exact.join(" OR ");
        let on_deltas = sql.under_any("repository", &prefixes);
        let on_counts = sql.under_any("repository", &prefixes);
        format!(
            "SELECT 0, kind, name, key, {si}, {sf}
             FROM (SELECT substr(kind, 1, 1) AS kind, '' AS name, key, images, findings
                   FROM summary_counts
                   WHERE kind IN ('v', 's', 'p', 'v+', 's+', 'p+') AND ({exact})
                   UNION ALL
                   SELECT kind, CASE WHEN kind = 'r' THEN repository ELSE '' END, key,
                          images, findings
                   FROM summary_deltas WHERE kind IN ('v', 's', 'p', 'r') AND {on_deltas}
                   UNION ALL
                   SELECT kind, repository, key, images, findings FROM summary_counts
                   WHERE kind = 'r' AND {on_counts}) AS u
             GROUP BY kind, name, key"
        )
    } else {
        // The ten first packages and repositories of the counters, and
        // as many more as the deltas name: whatever the deltas change, the
        // ten first after them are among these and the deltas' own.
        format!(
            "WITH d AS (SELECT kind, repository, key, {si} AS images, {sf} AS findings
                        FROM summary_deltas WHERE kind IN ('V', 'S', 'P', 'r')
                        GROUP BY kind, repository, key)
             SELECT 1, kind, repository, key, images, findings FROM d
             UNION ALL
             SELECT 0, kind, repository, key, images, findings FROM summary_counts
             WHERE kind IN ('V', 'S')
             UNION ALL
             SELECT * FROM (SELECT 0, kind, repository, key, images, findings
                            FROM summary_counts WHERE kind = 'P'
                            ORDER BY images DESC, findings DESC, key
                            LIMIT 10 + (SELECT count(*) FROM d WHERE kind = 'P')) AS top_p
             UNION ALL
             SELECT * FROM (SELECT 0, kind, repository, key, images, findings
                            FROM summary_counts WHERE kind = 'r'
                            ORDER BY findings DESC, images DESC, repository
                            LIMIT 10 + (SELECT count(*) FROM d WHERE kind = 'r')) AS top_r
             UNION ALL
             SELECT 0, c.kind, c.repository, c.key, c.images, c.findings
             FROM summary_counts c JOIN d ON c.kind = d.kind AND c.repository = d.repository
                 AND c.key = d.key
             WHERE d.kind IN ('P', 'r')"
        )
    };
    let rows = db.rows(&sql).await?;
    // The counters (each once: a row may come twice), plus the deltas.
    let mut counts: HashMap<(String, String, String), (i64, i64)> = HashMap::new();
    let mut deltas = Vec::new();
    for row in &rows {
        let key = (row[1].text(), row[2].text(), row[3].text());
        let value = (row[4].int(), row[5].int());
        if row[0].int() == 1 {
            deltas.push((key, value));
        } else {
            counts.insert(key, value);
        }
    }
    for (key, (i, f)) in deltas {
        let c = counts.entry(key).or_default();
        c.0 += i;
        c.1 += f;
    }
    let mut out = RegistrySummary::default();
    let mut packages: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut repositories = Vec::new();
    for ((kind, repo, key), (images, findings)) in counts {
        if images == 0 && findings == 0 {
            continue;
        }
        match kind.to_ascii_lowercase().as_str() {
            "v" => {
                out.images += images;
                *out.images_by_verdict.entry(key).or_default() += images;
            }
            "s" => {
                let (severity, fix_state) = parse_key(&key);
                out.findings += findings;
                *out.findings_by_severity.entry(severity).or_default() += findings;
                *out.findings_by_fix_state.entry(fix_state).or_default() += findings;
            }
            "p" => {
                let p = packages.entry(key).or_default();
                p.0 += images;
                p.1 += findings;
            }
            "r" => repositories.push(Affected {
                name: repo,
                images,
                findings,
            }),
            _ => {}
        }
    }
    out.images_by_verdict.retain(|_, n| *n != 0);
    out.findings_by_severity.retain(|_, n| *n != 0);
    out.findings_by_fix_state.retain(|_, n| *n != 0);
    let mut packages: Vec<Affected> = packages
        .into_iter()
        .filter(|(_, (_, f))| *f != 0)
        .map(|(name, (images, findings))| Affected {
            name,
            images,
            findings,
        })
        .collect();
    packages.sort_by(|a, b| {
        (b.images, b.findings)
            .cmp(&(a.images, a.findings))
            .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });
    packages.truncate(10);
    out.top_packages = packages;
    repositories.retain(|r| r.findings != 0);
    repositories.sort_by(|a, b| {
        (b.findings, b.images)
            .cmp(&(a.findings, a.images))
            .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });
    repositories.truncate(10);
    out.top_repositories = repositories;
    Ok(out)
}

/// `severity|fix_state`, as the triggers write it.
fn parse_key(key: &str) -> (Severity, FixStateKind) {
    let (rank, fix) = key.split_once('|').unwrap_or((key, ""));
    let rank = rank.parse::<i16>().unwrap_or(0);
    (severity_of_rank(rank), fix_state_of(fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back() {
        assert_eq!(
            parse_key("4|fixed"),
            (severity_of_rank(4), fix_state_of("fixed"))
        );
        assert_eq!(parse_key("0|unfixed").1, fix_state_of("unfixed"));
    }
}
