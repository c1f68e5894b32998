"""Commands on the model and its rollups: validate, plan, apply, verify, repair.

Each runs here, or through the running server when it holds the embedded engine (or with
``--server``), printing the same lines either way.
"""

from __future__ import annotations

import argparse
import sys

from semantic import load_model
from semantic.errors import ModelError, SemanticError
from server.cli.common import compiled_model, open_warehouse, posted_model, running_server
from server.cli.output import say
from server.operations.apply import (
    apply_model,
    apply_summary,
    migration_steps,
    render_steps,
    repair_model,
    verify_model,
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


COMMANDS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "verify": cmd_verify,
    "repair": cmd_repair,
}
