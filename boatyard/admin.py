"""``boatyard admin keys create|list|revoke``: API keys, straight on DynamoDB with the operator's AWS credentials.

Never through the API: an operator's credentials (or moto locally, via
``AWS_ENDPOINT_URL``) and the same settings as the service
(``BOATYARD_TABLE``, region).  The key store is :mod:`chalicelib.stores.apikeys`.

``register(subparsers)`` adds the ``admin`` tree to the ``boatyard`` console
script (``boatyard/cli.py``); ``python -m boatyard.admin keys …`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from chalicelib.domain.errors import BoatyardError
from chalicelib.stores.apikeys import ApiKeys
from chalicelib.stores.services import Services


def _keys() -> ApiKeys:
    """The key store, with the environment's settings and the operator's AWS credentials."""
    return Services.from_environment().apikeys


def _create(args: argparse.Namespace) -> int:
    record, token = _keys().create_key(args.owner, args.label or "", "admin" if args.admin else "user")
    if args.json:
        print(json.dumps({**record.as_dict(), "token": token}))
    else:
        print(f"key {record.key_id} for owner {record.owner} ({record.scope}) created.")
        print("The key is shown once; store it now (e.g. in your CI's secret store):")
        print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    keys = _keys().list_keys()
    if args.json:
        print(json.dumps([k.as_dict() for k in keys]))
        return 0
    print(f"{'KEY_ID':<18}{'OWNER':<24}{'SCOPE':<7}{'STATE':<9}{'CREATED':<26}{'LAST USED':<26}LABEL")
    for k in keys:
        print(
            f"{k.key_id:<18}{k.owner:<24}{k.scope:<7}{k.state:<9}{k.created_at:<26}{(k.last_used_at or '-'):<26}{k.label}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record = _keys().revoke_key(args.key_id)
    print(f"key {record.key_id} of owner {record.owner} revoked; it stops working within the authorizer cache time")
    return 0


def _guarded(func: Any) -> Any:
    """Turn expected failures into a message and exit status 1/2 instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except BoatyardError as err:
            print(f"boatyard admin: {err.message}", file=sys.stderr)
            return 2
        except NoCredentialsError:
            print("boatyard admin: no AWS credentials found (admin commands act on DynamoDB directly)", file=sys.stderr)
            return 1
        except (ClientError, BotoCoreError) as exc:
            print(f"boatyard admin: AWS call failed: {exc}", file=sys.stderr)
            return 1

    return run


def register(subparsers: Any) -> None:
    """Add ``admin keys create|list|revoke`` to a ``boatyard`` argparse subparsers object (each leaf sets ``func``)."""
    admin = subparsers.add_parser("admin", help="operator commands (act on DynamoDB with your AWS credentials)")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    keys = admin_sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)

    create = keys_sub.add_parser("create", help="mint a key (printed once)")
    create.add_argument("--owner", required=True, help="the team or user the key's jobs belong to")
    create.add_argument("--label", default="", help="what the key is for, e.g. ci")
    create.add_argument("--admin", action="store_true", help="admin scope: may list every owner's jobs")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_guarded(_create))

    listing = keys_sub.add_parser("list", help="every key (never the tokens)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_guarded(_list))

    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(func=_guarded(_revoke))


def main(argv: list[str] | None = None) -> int:
    """``python -m boatyard.admin keys …``: the admin tree on its own."""
    parser = argparse.ArgumentParser(prog="boatyard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["admin", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
