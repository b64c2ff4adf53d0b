"""The ledger's one writer, ``engage_ledger_post``, and ``engage_conflict`` (see ledger.py).

Both are ``CREATE OR REPLACE``: a later migration that changes the ledger replaces the function
with its whole new text (never edit this file once merged; copy it into a new migration).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "engage_ledger_post: credits, debits, reversals and expiries in one call"

CONFLICT = """
CREATE OR REPLACE FUNCTION engage_conflict() RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    RAISE EXCEPTION 'engage: a concurrent change, plan again' USING ERRCODE = '40001';
END
$fn$
"""

# Refusals are raised as SQLSTATE P0001 with HINT 'engage.ledger', MESSAGE the error code and
# DETAIL the error's details as JSON text (service.points.ledger.refusal turns them back).
LEDGER_POST = r"""
CREATE OR REPLACE FUNCTION engage_ledger_post(
    p_tenant integer, p_now timestamptz, p_postings jsonb, p_member bigint DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    acct_m bigint[] := '{}';
    acct_c text[] := '{}';
    acct_b bigint[] := '{}';
    acct_e bigint[] := '{}';
    acct_x jsonb[] := '{}';
    up_members bigint[] := '{}';
    down_members bigint[] := '{}';
    result jsonb := '[]';
    posting jsonb;
    a record;
    e ledger_entries%ROWTYPE;
    orig ledger_entries%ROWTYPE;
    i integer;
    m bigint;
    c text;
    k text;
    amt bigint;
    bal bigint;
    earned bigint;
    due_amt bigint;
    avail bigint;
    expiry jsonb;
    ladder jsonb;
    n_levels integer;
    rolling boolean;
    v_days integer;
    cur integer;
    target integer;
    new_level integer;
    qual bigint;
BEGIN
    -- 1. Every posting names its account: the default member fills in; a reversal takes the
    --    member and currency of the credit it reverses (refused if there is none).
    SELECT coalesce(jsonb_agg(x ORDER BY o), '[]') INTO p_postings FROM (
        SELECT o, CASE
            WHEN x->>'kind' = 'reverse' THEN x || coalesce((
                SELECT jsonb_build_object('member_id', l.member_id, 'currency', l.currency)
                FROM ledger_entries l
                WHERE l.tenant_id = p_tenant AND l.id = (x->>'reverses_entry_id')::bigint
            ), '{}')
            WHEN x->>'member_id' IS NULL THEN x || jsonb_build_object('member_id', p_member)
            ELSE x END AS x
        FROM jsonb_array_elements(p_postings) WITH ORDINALITY AS t(x, o)
    ) s;
    FOR posting IN SELECT x FROM jsonb_array_elements(p_postings) AS t(x) LOOP
        IF posting->>'kind' = 'reverse' THEN
            SELECT * INTO orig FROM ledger_entries
            WHERE tenant_id = p_tenant AND id = (posting->>'reverses_entry_id')::bigint;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001', HINT = 'engage.ledger',
                    MESSAGE = 'ENTRY_NOT_FOUND',
                    DETAIL = jsonb_build_object('entryId', (posting->>'reverses_entry_id')::bigint)::text;
            END IF;
            IF orig.kind <> 'credit' THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001', HINT = 'engage.ledger',
                    MESSAGE = 'NOT_REVERSIBLE',
                    DETAIL = jsonb_build_object('entryId', orig.id, 'kind', orig.kind)::text;
            END IF;
        ELSIF posting->>'member_id' IS NULL OR posting->>'currency' IS NULL THEN
            RAISE EXCEPTION 'engage_ledger_post: posting without member_id/currency: %', posting;
        END IF;
    END LOOP;

    -- 2. Lock each account once, in one order (member, currency) so that concurrent posts
    --    never deadlock; create missing ones. Then write the expiry of the account's lots past
    --    their date, so every balance below is the balance at p_now.
    FOR a IN SELECT DISTINCT (x->>'member_id')::bigint AS m, x->>'currency' AS c
             FROM jsonb_array_elements(p_postings) AS t(x) ORDER BY 1, 2 LOOP
        SELECT balance, earned_total INTO bal, earned FROM point_accounts
        WHERE tenant_id = p_tenant AND member_id = a.m AND currency = a.c FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO point_accounts (tenant_id, member_id, currency, balance, earned_total,
                                        updated_at)
            VALUES (p_tenant, a.m, a.c, 0, 0, p_now) ON CONFLICT DO NOTHING;
            SELECT balance, earned_total INTO bal, earned FROM point_accounts
            WHERE tenant_id = p_tenant AND member_id = a.m AND currency = a.c FOR UPDATE;
        END IF;
        expiry := NULL;
        SELECT coalesce(sum(remaining), 0) INTO due_amt FROM point_lots
        WHERE tenant_id = p_tenant AND member_id = a.m AND currency = a.c
          AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= p_now;
        IF due_amt > 0 THEN
            bal := bal - due_amt;
            INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta,
                balance_after, reason, note, created_at)
            VALUES (p_tenant, a.m, a.c, 'expire', -due_amt, bal, 'expiry', '', p_now)
            RETURNING * INTO e;
            INSERT INTO lot_allocations (entry_id, lot_id, amount)
            SELECT e.id, id, remaining FROM point_lots
            WHERE tenant_id = p_tenant AND member_id = a.m AND currency = a.c
              AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= p_now;
            UPDATE point_lots SET remaining = 0
            WHERE tenant_id = p_tenant AND member_id = a.m AND currency = a.c
              AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= p_now;
            INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at)
            VALUES (pg_current_xact_id()::text::bigint, p_tenant, gen_random_uuid(),
                    a.c || '.expired', a.m,
                    jsonb_build_object('currency', a.c, 'amount', due_amt, 'entryId', e.id),
                    p_now);
            expiry := to_jsonb(e) || '{"replayed": false}';
        END IF;
        acct_m := acct_m || a.m;
        acct_c := acct_c || a.c;
        acct_b := acct_b || bal;
        acct_e := acct_e || earned;
        acct_x := array_append(acct_x, expiry);
    END LOOP;

    -- 3. The postings, in order.
    FOR posting IN SELECT x FROM jsonb_array_elements(p_postings) AS t(x) LOOP
        m := (posting->>'member_id')::bigint;
        c := posting->>'currency';
        k := posting->>'idempotency_key';
        i := 1;
        WHILE acct_m[i] <> m OR acct_c[i] <> c LOOP
            i := i + 1;
        END LOOP;
        bal := acct_b[i];

        IF posting->>'kind' = 'expire' THEN
            result := result || jsonb_build_array(acct_x[i]);
            CONTINUE;
        END IF;

        -- A key that may already be on the books answers with the first entry (the caller
        -- says ``key_is_new`` when it just created what the key names: no lookup then).
        IF k IS NOT NULL AND NOT coalesce((posting->>'key_is_new')::boolean, false) THEN
            SELECT * INTO e FROM ledger_entries WHERE tenant_id = p_tenant AND idempotency_key = k;
            IF FOUND THEN
                result := result || jsonb_build_array(to_jsonb(e) || '{"replayed": true}');
                CONTINUE;
            END IF;
        END IF;

        IF posting->>'kind' = 'credit' THEN
            amt := (posting->>'amount')::bigint;
            IF amt IS NULL OR amt <= 0 THEN
                RAISE EXCEPTION 'engage_ledger_post: a credit needs a positive amount: %', posting;
            END IF;
            bal := bal + amt;
            INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta,
                balance_after, reason, note, source_ref, idempotency_key, expires_at, created_at)
            VALUES (p_tenant, m, c, 'credit', amt, bal, posting->>'reason',
                    coalesce(posting->>'note', ''), posting->>'source_ref', k,
                    (posting->>'expires_at')::timestamptz, p_now)
            RETURNING * INTO e;
            INSERT INTO point_lots (tenant_id, member_id, currency, entry_id, amount, remaining,
                                    expires_at, created_at)
            VALUES (p_tenant, m, c, e.id, amt, amt, e.expires_at, p_now);
            acct_e[i] := acct_e[i] + amt;
            INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at)
            VALUES (pg_current_xact_id()::text::bigint, p_tenant, gen_random_uuid(),
                    c || '.credited', m,
                    jsonb_build_object('currency', c, 'amount', amt, 'entryId', e.id,
                                       'reason', e.reason, 'balance', bal),
                    p_now);
            IF c = 'growth' THEN
                up_members := up_members || m;
            END IF;

        ELSIF posting->>'kind' = 'debit' THEN
            amt := (posting->>'amount')::bigint;
            IF amt IS NULL OR amt <= 0 THEN
                RAISE EXCEPTION 'engage_ledger_post: a debit needs a positive amount: %', posting;
            END IF;
            SELECT coalesce(sum(remaining), 0) INTO avail FROM point_lots
            WHERE tenant_id = p_tenant AND member_id = m AND currency = c AND remaining > 0;
            IF amt > avail THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001', HINT = 'engage.ledger',
                    MESSAGE = 'INSUFFICIENT_POINTS',
                    DETAIL = jsonb_build_object('balance', avail, 'requested', amt)::text;
            END IF;
            bal := bal - amt;
            INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta,
                balance_after, reason, note, source_ref, idempotency_key, created_at)
            VALUES (p_tenant, m, c, 'debit', -amt, bal, posting->>'reason',
                    coalesce(posting->>'note', ''), posting->>'source_ref', k, p_now)
            RETURNING * INTO e;
            -- FIFO: earliest-expiring lots first, lots that never expire last, ties by age.
            WITH l AS (
                SELECT id, remaining, sum(remaining) OVER (
                    ORDER BY expires_at ASC NULLS LAST, id) AS upto
                FROM point_lots
                WHERE tenant_id = p_tenant AND member_id = m AND currency = c AND remaining > 0
            ), take AS (
                SELECT id, least(remaining, amt - (upto - remaining)) AS n
                FROM l WHERE upto - remaining < amt
            ), alloc AS (
                INSERT INTO lot_allocations (entry_id, lot_id, amount)
                SELECT e.id, id, n FROM take
            )
            UPDATE point_lots p SET remaining = p.remaining - take.n FROM take
            WHERE p.id = take.id;
            INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at)
            VALUES (pg_current_xact_id()::text::bigint, p_tenant, gen_random_uuid(),
                    c || '.debited', m,
                    jsonb_build_object('currency', c, 'amount', amt, 'entryId', e.id,
                                       'reason', e.reason, 'balance', bal),
                    p_now);

        ELSIF posting->>'kind' = 'reverse' THEN
            SELECT * INTO orig FROM ledger_entries
            WHERE tenant_id = p_tenant AND id = (posting->>'reverses_entry_id')::bigint;
            SELECT * INTO e FROM ledger_entries WHERE reverses_entry_id = orig.id;
            IF FOUND THEN  -- reversing twice changes nothing
                result := result || jsonb_build_array(to_jsonb(e) || '{"replayed": true}');
                CONTINUE;
            END IF;
            SELECT coalesce(sum(remaining), 0) INTO amt FROM point_lots WHERE entry_id = orig.id;
            IF orig.delta > amt AND coalesce((posting->>'refuse_shortfall')::boolean, false) THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001', HINT = 'engage.ledger',
                    MESSAGE = 'REVERSAL_SHORTFALL',
                    DETAIL = jsonb_build_object('entryId', orig.id, 'credited', orig.delta,
                                                'available', amt)::text;
            END IF;
            bal := bal - amt;
            INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta,
                balance_after, reason, note, source_ref, reverses_entry_id, shortfall,
                created_at)
            VALUES (p_tenant, m, c, 'reverse', -amt, bal,
                    coalesce(posting->>'reason', 'reversal'), coalesce(posting->>'note', ''),
                    orig.source_ref, orig.id, orig.delta - amt, p_now)
            RETURNING * INTO e;
            INSERT INTO lot_allocations (entry_id, lot_id, amount)
            SELECT e.id, l.id, l.remaining FROM point_lots l
            WHERE l.entry_id = orig.id AND l.remaining > 0 ORDER BY l.id;
            UPDATE point_lots SET remaining = 0 WHERE entry_id = orig.id AND remaining > 0;
            acct_e[i] := acct_e[i] - amt;
            INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at)
            VALUES (pg_current_xact_id()::text::bigint, p_tenant, gen_random_uuid(),
                    c || '.reversed', m,
                    jsonb_build_object('currency', c, 'amount', amt, 'entryId', e.id,
                                       'reversedEntryId', orig.id, 'shortfall', e.shortfall),
                    p_now);
            IF c = 'growth' THEN
                down_members := down_members || m;
            END IF;
        ELSE
            RAISE EXCEPTION 'engage_ledger_post: unknown posting kind: %', posting;
        END IF;
        acct_b[i] := bal;
        result := result || jsonb_build_array(to_jsonb(e) || '{"replayed": false}');
    END LOOP;

    -- 4. Balances, each account written once.
    UPDATE point_accounts p SET balance = u.b, earned_total = u.e, updated_at = p_now
    FROM unnest(acct_m, acct_c, acct_b, acct_e) AS u(m, c, b, e)
    WHERE p.tenant_id = p_tenant AND p.member_id = u.m AND p.currency = u.c
      AND (p.balance <> u.b OR p.earned_total <> u.e);

    -- 5. Levels after growth changed: earning only raises a level; a reversal may lower it to
    --    what the remaining growth supports (qualifying growth: earned in total, or within the
    --    rolling window).
    IF cardinality(up_members) + cardinality(down_members) > 0 THEN
        SELECT config INTO ladder FROM level_ladders WHERE tenant_id = p_tenant;
        IF FOUND THEN
            n_levels := jsonb_array_length(ladder->'levels');
            rolling := coalesce(ladder->'validity'->>'mode', 'forever') = 'rolling';
            v_days := coalesce((ladder->'validity'->>'days')::integer, 0);
            FOR m IN SELECT DISTINCT u FROM unnest(up_members || down_members) AS u ORDER BY 1
            LOOP
                SELECT level_index INTO cur FROM member_levels
                WHERE tenant_id = p_tenant AND member_id = m FOR UPDATE;
                IF NOT FOUND THEN
                    INSERT INTO member_levels (tenant_id, member_id, level_index, since)
                    VALUES (p_tenant, m, 0, p_now) ON CONFLICT DO NOTHING;
                    SELECT level_index INTO cur FROM member_levels
                    WHERE tenant_id = p_tenant AND member_id = m FOR UPDATE;
                END IF;
                cur := least(cur, n_levels - 1);
                IF rolling THEN
                    SELECT coalesce(sum(delta), 0) INTO qual FROM ledger_entries
                    WHERE tenant_id = p_tenant AND member_id = m AND currency = 'growth'
                      AND kind IN ('credit', 'reverse')
                      AND created_at >= p_now - make_interval(days => v_days)
                      AND created_at <= p_now;
                ELSE
                    i := 1;
                    WHILE acct_m[i] <> m OR acct_c[i] <> 'growth' LOOP
                        i := i + 1;
                    END LOOP;
                    qual := acct_e[i];
                END IF;
                SELECT coalesce(max(o - 1), 0) INTO target
                FROM jsonb_array_elements(ladder->'levels') WITH ORDINALITY AS t(l, o)
                WHERE qual >= (l->>'threshold')::bigint;
                new_level := CASE WHEN m = ANY(down_members) THEN target
                                  ELSE greatest(cur, target) END;
                IF new_level <> cur THEN
                    UPDATE member_levels SET level_index = new_level, since = p_now,
                        review_at = CASE WHEN rolling AND new_level > 0
                                         THEN p_now + make_interval(days => v_days) END
                    WHERE tenant_id = p_tenant AND member_id = m;
                    INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload,
                                        occurred_at)
                    VALUES (pg_current_xact_id()::text::bigint, p_tenant, gen_random_uuid(),
                            CASE WHEN new_level > cur THEN 'level.up' ELSE 'level.down' END, m,
                            jsonb_build_object('from', cur, 'to', new_level,
                                'fromName', ladder->'levels'->cur->>'name',
                                'toName', ladder->'levels'->new_level->>'name'),
                            p_now);
                END IF;
            END LOOP;
        END IF;
    END IF;
    RETURN result;
END
$fn$
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="points", description=DESCRIPTION)

    async def run():
        from service.points.tables import LedgerEntry

        for ddl in (CONFLICT, LEDGER_POST):  # piccolo's raw() reads {} as placeholders
            await LedgerEntry.raw(ddl.replace("{", "{{").replace("}", "}}"))

    manager.add_raw(run)
    return manager
