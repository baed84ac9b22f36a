#!/usr/bin/env python3
"""Checks JSON lines against the contract's JSON Schemas (docs/schema/, draft 2020-12) with the
third-party validator `jsonschema-rs` (PyPI; fast enough for the ~10^5 records of a test run).

    contract_check.py events FILE...    every line must be a valid input event
    contract_check.py records FILE...   every line must be a valid indicator record
    contract_check.py refused FILE...   every line that is JSON must FAIL the event schema
                                        (lines the service refused; non-JSON is counted)
    contract_check.py wrong             deliberately wrong records must fail, a right one pass

Each line is checked against the schema of its `type` (events) or `kind` (records); an
unknown one against the union schema, which fails it. A record line may also be
{"key": KEY, "record": RECORD} (as the test harness and check_releases.py --records write it):
then KEY must also be the Kafka key the contract gives that record. Identical lines are
checked once.
Prints counts per schema; exits 1 on any failure, 2 on usage errors.
"""

import json
import pathlib
import sys
from collections import Counter

import jsonschema_rs

SCHEMA_DIR = pathlib.Path(__file__).resolve().parents[2] / "docs" / "schema"
EVENT_SCHEMAS = {
    "customs_trade": "customs_trade.schema.json",
    "freight_trains": "freight_trains.schema.json",
    "fx_rate": "fx_rate.schema.json",
}
RECORD_SCHEMAS = {
    "trade": "trade.schema.json",
    "trade_leaders": "trade_leaders.schema.json",
    "freight": "freight.schema.json",
}
MAX_SHOWN = 5


def load_validators():
    """One validator per schema file (each checked against its meta-schema); relative `$ref`s
    resolve to the files beside it."""
    return {
        path.name: jsonschema_rs.validator_for(json.loads(path.read_text()), base_uri=path.as_uri())
        for path in sorted(SCHEMA_DIR.glob("*.schema.json"))
    }


def schema_for(value, field, table, union):
    tag = value.get(field) if isinstance(value, dict) else None
    return table.get(tag, union)


def unique_lines(files):
    """Distinct non-empty lines of the files, each with the first place it occurs."""
    seen = {}
    for f in files:
        with open(f, encoding="utf-8", errors="surrogateescape") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if line and line not in seen:
                    seen[line] = f"{f}:{n}"
    return seen


def describe(error):
    where = "/".join(str(p) for p in error.instance_path) or "(root)"
    return f"{where}: {error.message[:200]}"


def record_key(r):
    """The Kafka key of a record (contract section 3), from its own fields."""
    member = r.get("member") or "-"
    if r.get("kind") == "trade":
        return f"trade/{r['region']}/{r['flow']}/{r['dimension']}/{member}/{r['period']}"
    if r.get("kind") == "trade_leaders":
        return f"leaders/{r['region']}/{r['flow']}/{r['dimension']}/{r['period']}"
    return f"freight/{r.get('port')}/{r.get('service')}/{r.get('period')}"


def check_valid(validators, files, field, table, union):
    counts, failures = Counter(), []
    for line, where in unique_lines(files).items():
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            failures.append(f"{where}: not JSON: {e}")
            continue
        if field == "kind" and isinstance(value, dict) and set(value) == {"key", "record"}:
            key, value = value["key"], value["record"]
            try:
                expected = record_key(value)
            except (KeyError, TypeError):
                expected = None  # the schema check below names what is missing
            if expected is not None and key != expected:
                counts[("record keys", "WRONG")] += 1
                failures.append(f"{where}: key {key!r}, but the record's fields give {expected!r}")
            else:
                counts[("record keys", "match")] += 1
        name = schema_for(value, field, table, union)
        validator = validators[name]
        errors = [] if validator.is_valid(value) else list(validator.iter_errors(value))
        counts[(name, "valid" if not errors else "INVALID")] += 1
        if errors:
            failures.append(f"{where}: {name}: " + "; ".join(describe(e) for e in errors))
    return counts, failures


def check_refused(validators, files):
    counts, failures = Counter(), []
    for line, where in unique_lines(files).items():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            counts[("not JSON", "skipped")] += 1
            continue
        name = schema_for(value, "type", EVENT_SCHEMAS, "event.schema.json")
        if validators[name].is_valid(value):
            counts[(name, "WRONGLY VALID")] += 1
            failures.append(f"{where}: refused by the service but valid against {name}: {line[:200]}")
        else:
            counts[(name, "invalid as expected")] += 1
    return counts, failures


def a_right_trade_record():
    """The bulletin's headline record (contract v2 fields), as a downstream team would see it."""
    return {
        "kind": "trade", "region": "XJ", "flow": "total", "dimension": "total", "member": None,
        "period": "2024-09", "month_cny": "38210000000.00", "ytd_cny": "322390000000.00",
        "months_in_ytd": 9, "ytd_basis": "derived", "ytd_gap_cny": None,
        "prior_ytd_cny": "249910000000.00", "ytd_yoy_pct": 29.001641,
        "ytd_usd": "44170000000.00", "prior_ytd_usd": "34910000000.00",
        "ytd_usd_yoy_pct": 26.525351, "ttm_cny": "410000000000.00", "share_pct": None,
        "yoy_rank": 1, "yoy_rank_of": 31,
    }


def wrong_records():
    """Records that break the contract, each in one way, with what is wrong."""
    right = a_right_trade_record()

    def changed(**fields):
        r = dict(right)
        r.update(fields)
        return r

    without_rank = dict(right)
    del without_rank["yoy_rank"]
    v1 = {k: v for k, v in right.items()
          if k not in ("ytd_basis", "ytd_gap_cny", "prior_ytd_usd", "ytd_usd_yoy_pct")}
    # (what is wrong, the field the refusal must name, the record)
    return [
        ("ytd_cny as a JSON number", "ytd_cny", changed(ytd_cny=322390000000.00)),
        ("yoy_rank missing", '"yoy_rank" is a required property', without_rank),
        ("money with one decimal", "ytd_usd", changed(ytd_usd="44170000000.0")),
        ("a negative year to date", "ytd_cny", changed(ytd_cny="-1.00")),
        ("an unknown field", "'ytd_eur' was unexpected", changed(ytd_eur="1.00")),
        ("a v1 record (no v2 fields)", '"ytd_basis" is a required property', v1),
        ("ytd_basis outside its set", "ytd_basis", changed(ytd_basis="estimated")),
        ("a rank on a breakdown", "yoy_rank", changed(dimension="enterprise_type",
                                                      member="private", share_pct=92.5)),
        ("a gap on a derived year to date", "ytd_gap_cny", changed(ytd_gap_cny="0.00")),
        ("0 instead of null for an unknown prior", "prior_ytd_cny", changed(prior_ytd_cny=0)),
    ]


def check_wrong(validators):
    counts, failures = Counter(), []
    trade = validators["trade.schema.json"]
    record = validators["record.schema.json"]
    right = a_right_trade_record()
    for v in (trade, record):
        if not v.is_valid(right):
            failures.append("the right trade record fails: " + describe(next(v.iter_errors(right))))
    counts[("trade.schema.json", "right record valid")] += 1
    for what, names, r in wrong_records():
        if record.is_valid(r):
            failures.append(f"a wrong record passes record.schema.json: {what}")
        reasons = [describe(e) for e in trade.iter_errors(r)]
        if not reasons:
            failures.append(f"a wrong record passes trade.schema.json: {what}")
        elif not any(names in x for x in reasons):
            failures.append(f"{what}: refused, but not for naming {names!r}: {reasons}")
        else:
            counts[("trade.schema.json", "wrong record refused")] += 1
            print(f"  refused as it must be: {what}: {reasons[0]}")
    return counts, failures


def report(title, counts, failures):
    print(f"{title}:")
    for (schema, outcome), n in sorted(counts.items()):
        print(f"  {n:7d}  {schema:28s} {outcome}")
    # The most common reasons first: one broken field shows as one line, not thousands.
    reasons = Counter(r for f in failures for r in f.split(": ", 2)[-1].split("; "))
    for reason, n in reasons.most_common(MAX_SHOWN):
        print(f"  {n:7d}  failures: {reason}")
    for f in failures[:MAX_SHOWN]:
        print(f"  FAIL {f[:300]}")
    if len(failures) > MAX_SHOWN:
        print(f"  ... and {len(failures) - MAX_SHOWN} more failures")
    return not failures


def main(argv):
    if len(argv) < 2 or argv[1] not in ("events", "records", "refused", "wrong"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, files = argv[1], argv[2:]
    if mode != "wrong" and not files:
        print(f"{mode}: no files given", file=sys.stderr)
        return 2
    validators = load_validators()
    label = f"{mode} ({', '.join(files)})" if files else mode
    if mode == "events":
        counts, failures = check_valid(validators, files, "type", EVENT_SCHEMAS, "event.schema.json")
    elif mode == "records":
        counts, failures = check_valid(validators, files, "kind", RECORD_SCHEMAS, "record.schema.json")
    elif mode == "refused":
        counts, failures = check_refused(validators, files)
    else:
        counts, failures = check_wrong(validators)
    if not counts and not failures:
        failures = ["nothing to check: the files are empty"]
    return 0 if report(label, counts, failures) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
