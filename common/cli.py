"""The `neonomaly` command: up, create-user, detect, check-chain."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from common import detect_command

if TYPE_CHECKING:
    from common.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    from common.settings import Settings

    overrides = {"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}
    return Settings(**overrides)


def cmd_up(args: argparse.Namespace) -> int:
    from common.supervisor import Supervisor, UpOptions

    settings = _settings(args)
    options = UpOptions(
        host=args.host, port=args.port, flower_port=args.flower_port, data_dir=settings.data_dir
    )
    return Supervisor(settings, options).run()


def cmd_create_user(args: argparse.Namespace) -> int:
    from common.stores import connect_graph
    from common.users.service import create_user

    settings = _settings(args)
    repositories = connect_graph(settings)
    try:
        repositories.ensure_schema()
        user, key = create_user(repositories.users, args.name)
    finally:
        repositories.close()
    # Where, because a key made against another data dir than the running service's is
    # refused there with nothing to say why.
    print(f"created user {user.name!r} (id {user.id}) in {_store_named(settings)}.")
    print("Its API key, shown only this once:")
    print(key.plain)
    return 0


def _store_named(settings: Settings) -> str:
    if settings.uses_embedded:
        return f"the embedded store in {settings.data_dir.resolve()}"
    return f"the graph at {_without_credentials(settings.graph_url)}"


def _without_credentials(url: str) -> str:
    parsed = urlsplit(url)
    return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()


def cmd_check_chain(args: argparse.Namespace) -> int:
    from common.metrics.integrity import check_chain
    from common.stores import connect_graph

    settings = _settings(args)
    repositories = connect_graph(settings)
    try:
        # An id mistyped, or from another store, has no readings: not a chain found whole.
        if repositories.metrics.get_ref(args.metric_id) is None:
            print(
                f"neonomaly: no metric {args.metric_id!r} in {_store_named(settings)}",
                file=sys.stderr,
            )
            return 1
        report = check_chain(repositories.readings, args.metric_id)
    finally:
        repositories.close()
    print(f"{report.readings} readings, {report.linked} on the chain")
    for problem in report.problems:
        print(f"problem: {problem}")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neonomaly", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--data-dir", type=Path, help="embedded server data (default: DATA_DIR or ./.neonomaly)"
        )

    up = commands.add_parser("up", help="run the whole service on the embedded default")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--flower-port", type=int, default=5555)
    with_data_dir(up)
    up.set_defaults(func=cmd_up)

    create_user = commands.add_parser("create-user", help="create a user and print its API key")
    create_user.add_argument("name")
    with_data_dir(create_user)
    create_user.set_defaults(func=cmd_create_user)

    check = commands.add_parser("check-chain", help="verify a metric's reading chain")
    check.add_argument("metric_id")
    with_data_dir(check)
    check.set_defaults(func=cmd_check_chain)

    detect_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported once the arguments are parsed: --help needs neither settings nor the server.
    from common.embedded import EmbeddedServerError
    from common.errors import ConflictError

    try:
        return int(args.func(args))
    # A data dir in use, or not ours; a user name taken: say so, no traceback.
    except (EmbeddedServerError, ConflictError) as exc:
        print(f"neonomaly: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
