"""Operator command for API keys and accounts: `python -m functions.keys create|revoke|list|
account-limit` against the table.

It uses the same settings as the API (SESSIONS_TABLE, AWS credentials and region, and
AWS_ENDPOINT_URL for the local emulator), so it works on the local stack and in AWS alike.
"""

from __future__ import annotations

import argparse
import sys

from functions.sessions.auth import ACCOUNT_ID, ACCOUNT_ID_RULE, ApiKeyService
from functions.settings import settings_from_env
from functions.store.dynamo import AccountStore, ApiKeyStore
from functions.wiring import dynamodb_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.keys")
    parser.add_argument("--table", help="sessions table (default: $SESSIONS_TABLE)")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key for a user and print it once")
    create.add_argument("--user", required=True)
    create.add_argument(
        "--account", help="the account the key belongs to (default: the user is its own account)"
    )
    revoke = sub.add_parser("revoke", help="revoke a key, given the key or its id")
    revoke.add_argument("key_or_id")
    sub.add_parser("list", help="list key ids, users, accounts and state (never the keys)")
    limit = sub.add_parser(
        "account-limit",
        help="give an account its own limit of live sessions (or --default: the config's)",
    )
    limit.add_argument("account")
    which = limit.add_mutually_exclusive_group(required=True)
    which.add_argument("limit", nargs="?", type=int)
    which.add_argument("--default", action="store_true")
    args = parser.parse_args(argv)

    settings = settings_from_env()
    table = args.table or settings.sessions_table
    if args.command == "account-limit":
        return _account_limit(AccountStore(dynamodb_client(), table), args)
    keys = ApiKeyService(ApiKeyStore(dynamodb_client(), table))
    if args.command == "create":
        try:
            key, rec = keys.create(args.user, account_id=args.account)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(key)
        print(
            f"created key {rec.key_id} for user {rec.user_id} in account "
            f"{rec.caller.account_id}; it is shown only once",
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
        print(
            f"{rec.key_id}  {rec.user_id:<24} {state:<8} {rec.created_at.isoformat()}  "
            f"account {rec.caller.account_id}"
        )
    return 0


def _account_limit(accounts: AccountStore, args: argparse.Namespace) -> int:
    if not ACCOUNT_ID.fullmatch(args.account):
        print(f"error: account id must be {ACCOUNT_ID_RULE}", file=sys.stderr)
        return 2
    if args.limit is not None and not 1 <= args.limit <= 1_000_000:
        print("error: the limit must be 1 to 1000000 live sessions", file=sys.stderr)
        return 2
    accounts.set_limit(args.account, None if args.default else args.limit)
    told = "the config's default" if args.default else f"{args.limit} live sessions"
    print(f"account {args.account}: limit is {told}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
