"""Operator command for API keys: `python -m functions.keys create|revoke|list` against the table.

It uses the same settings as the API (SESSIONS_TABLE, AWS credentials and region, and
AWS_ENDPOINT_URL for the local emulator), so it works on the local stack and in AWS alike.
"""

from __future__ import annotations

import argparse
import sys

from functions.sessions.auth import ApiKeyService
from functions.settings import settings_from_env
from functions.store.dynamo import ApiKeyStore
from functions.wiring import dynamodb_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.keys")
    parser.add_argument("--table", help="sessions table (default: $SESSIONS_TABLE)")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key for a user and print it once")
    create.add_argument("--user", required=True)
    revoke = sub.add_parser("revoke", help="revoke a key, given the key or its id")
    revoke.add_argument("key_or_id")
    sub.add_parser("list", help="list key ids, users and state (never the keys)")
    args = parser.parse_args(argv)

    settings = settings_from_env()
    keys = ApiKeyService(ApiKeyStore(dynamodb_client(), args.table or settings.sessions_table))
    if args.command == "create":
        try:
            key, rec = keys.create(args.user)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(key)
        print(
            f"created key {rec.key_id} for user {rec.user_id}; it is shown only once",
            file=sys.stderr,
        )
        return 0
    if args.command == "revoke":
        if keys.revoke(args.key_or_id):
            print("revoked", file=sys.stderr)
            return 0
        print("error: no such key", file=sys.stderr)
        return 1
    for rec in keys.list():
        state = "revoked" if rec.revoked else "active"
        print(f"{rec.key_id}  {rec.user_id:<24} {state:<8} {rec.created_at.isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
