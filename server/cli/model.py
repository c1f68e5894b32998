"""Commands on the model and its rollups: validate, plan, apply, verify, repair.

Each runs here, or through the running server when it holds the embedded engine (or with
``--server``), printing the same lines either way.
"""

from __future__ import annotations

import argparse
import sys

from semantic import load_model
from semantic.errors import ModelError, SemanticError
from server.cli.common import (
    add_server_argument,
    compiled_model,
    open_warehouse,
    posted_model,
    running_server,
    say,
)
from server.operations.validation import Validation, check_offline, model_summary, validate_model
from server.settings import Settings
from server.warehouse.availability import WarehouseUnavailable


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    model = load_model(settings.model_path)
    check_offline(model)  # never skipped: structure, references, SQL syntax, cycles
    warned = len(model.warnings)
    for warning in model.warnings:
        say(warning.render())
    try:
        client = running_server(args, settings)
    except WarehouseUnavailable as exc:
        say(Validation(model_summary(model), None, exc.message, warned).render(
            str(settings.model_path)))
        return 0
    if client is not None:
        try:
            answer = client.post_json("/v1/admin/validate", posted_model(settings))
        except ModelError:
            raise
        except SemanticError as exc:
            validation = Validation(model_summary(model), None, exc.message, warned)
        else:
            validation = Validation(str(answer["summary"]), answer.get("checked_against"),
                                    str(answer.get("reason") or ""), warned)
    else:
        warehouse = open_warehouse(settings)
        try:
            validation = validate_model(model, warehouse, settings.location)
        finally:
            warehouse.close()
    say(validation.render(str(settings.model_path)))
    return 0


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations.apply import migration_steps, render_steps

    client = running_server(args, settings)
    if client is not None:
        answer = client.post_json("/v1/admin/plan",
                                  posted_model(settings, keep_unused=args.keep_unused))
        sys.stdout.write(str(answer["plan"]))
        return 0
    with compiled_model(settings) as (compiled, warehouse):
        sys.stdout.write(render_steps(compiled, migration_steps(compiled, warehouse,
                                                                args.keep_unused)))
    return 0


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations.apply import apply_model, apply_summary

    client = running_server(args, settings)
    if client is not None:
        say(f"applying the server's model file through {client.url} (it keeps serving "
            "meanwhile)")
        answer = client.post_json("/v1/admin/apply", params={"keep_unused": args.keep_unused})
        for line in answer["log"]:
            say(str(line))
        say(str(answer["summary"]))
        return 0
    with compiled_model(settings) as (compiled, warehouse):
        steps = apply_model(compiled, warehouse, say, args.keep_unused)
    say(apply_summary(steps))
    return 0


def _verify_summary(drifted: int) -> tuple[str, int]:
    if drifted:
        return (f"verify: {drifted} rollup(s) drifted from the raw table; run `semantic "
                "repair` to rebuild them", 1)
    return "verify: every rollup equals the raw table", 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations.apply import verify_model

    client = running_server(args, settings)
    if client is not None:
        answer = client.post_json("/v1/admin/verify")
        for line in answer["log"]:
            say(str(line))
        drifted = int(answer["drifted"])
    else:
        with compiled_model(settings) as (compiled, warehouse):
            drifted = len(verify_model(compiled, warehouse, say))
    line, code = _verify_summary(drifted)
    say(line)
    return code


def cmd_repair(args: argparse.Namespace, settings: Settings) -> int:
    from server.operations.apply import repair_model

    client = running_server(args, settings)
    if client is not None:
        answer = client.post_json("/v1/admin/repair", params={"all": args.all})
        for line in answer["log"]:
            say(str(line))
        repaired = int(answer["repaired"])
    else:
        with compiled_model(settings) as (compiled, warehouse):
            repaired = repair_model(compiled, warehouse, args.all, say)
    say(f"repair: {repaired} rollup(s) rebuilt")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = commands.add_parser("validate", help="check the model; print located errors, "
                                   "exit 1 on any (columns and expressions are checked against "
                                   "the warehouse, through the running server if it holds it)")
    plan = commands.add_parser("plan", help="print what `apply` would do, with every DDL "
                               "statement")
    apply = commands.add_parser("apply", help="create missing rollups and backfill them, then "
                                "drop rollup tables the model no longer uses (idempotent)")
    for command in (plan, apply):
        command.add_argument("--keep-unused", action="store_true", help="keep (and keep "
                             "feeding) rollup tables the model no longer uses")
    verify = commands.add_parser("verify", help="compare every rollup with the raw table, "
                                 "group by group; exit 1 on drift (e.g. after ALTER "
                                 "UPDATE/DELETE on the source)")
    repair = commands.add_parser("repair", help="rebuild drifted rollups from the source and "
                                 "swap them in (REPLACE PARTITION), ingestion paused")
    repair.add_argument("--all", action="store_true", help="rebuild every rollup, drifted or "
                        "not")
    for command in (validate, plan, apply, verify, repair):
        add_server_argument(command)


COMMANDS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "verify": cmd_verify,
    "repair": cmd_repair,
}
