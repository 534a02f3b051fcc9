"""GENERAL_ADMIN (701) and USER_ADMIN (714): the administration PRC's tests and setups use.

701 (rodsadmin only): add/rm/modify user and group (password set from PRC's scrambled form),
group membership, add/rm/modify resource, add/rm child resource, rm unusedAVUs.
714: ``userpw`` (any user changing their own password, scrambled with the old one).
"""

from __future__ import annotations


from .. import errors
from ..auth import descramble_password, descramble_with_key
from ..catalog import User, now_ts
from ..errors import ZoneError
from ..framing import Message
from ..session import Session
from ..xmlpack import parse
from .registry import Reply, api

LEAF_TYPES = {"unixfilesystem"}


def _admin_password(session: Session) -> str:
    catalog = session.zone.catalog
    proxy = catalog.user(session.identity.proxy_user, session.identity.proxy_zone)
    return (catalog.password(proxy.user_id) if proxy else None) or ""


def _add(session: Session, args: list[str]) -> None:
    catalog = session.zone.catalog
    if args[1] in ("user", "group"):
        name, _, zone = args[2].partition("#")
        user = catalog.add_user(name, "rodsgroup" if args[1] == "group" else (args[3] or "rodsuser"), zone or args[4])
        if args[5]:
            catalog.set_password(user.user_id, descramble_with_key(args[5], _admin_password(session)))
    elif args[1] == "resource":
        name, resc_type, location, context = args[2], args[3], args[4], args[5]
        host, _, vault = location.partition(":")
        if resc_type in LEAF_TYPES and not vault:
            raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "a storage resource needs host:/vault/path")
        # like the real server, the vault is not touched here: its directories are made by the
        # first create, which fails if the server's account cannot reach them
        catalog.add_resource(name, resc_type, host or "localhost", vault, context)
    elif args[1] == "childtoresc":
        tree = catalog.resources
        parent, child = tree.named(args[2]), tree.named(args[3])
        if child.resc_parent:
            raise ZoneError(errors.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, f"{child.resc_name} already has a parent")
        catalog.db.execute("UPDATE r_resc_main SET resc_parent = ?, resc_parent_context = ?, modify_ts = ? "
                           "WHERE resc_id = ?", (str(parent.resc_id), args[4], now_ts(), child.resc_id))
        catalog.reload_resources()
    else:
        raise ZoneError(errors.SYS_NOT_SUPPORTED, f"add {args[1]} is not supported")


def _remove(session: Session, args: list[str]) -> None:
    catalog = session.zone.catalog
    db = catalog.db
    if args[1] in ("user", "group"):
        name = args[2].partition("#")[0]
        user = _user_or_fail(session, args[2], args[3])
        for base in (f"/{catalog.zone}/home/{name}", f"/{catalog.zone}/trash/home/{name}"):
            coll = catalog.collection(base)
            if coll is None:
                continue
            if len(catalog.subcollection_names(base)) > 1 or catalog.replicas_in_collection(coll.coll_id):
                raise ZoneError(errors.CAT_COLLECTION_NOT_EMPTY, f"{base} is not empty")
            catalog.forget_object(coll.coll_id)
            db.execute("DELETE FROM r_coll_main WHERE coll_id = ?", (coll.coll_id,))
        catalog.forget_object(user.user_id)
        for table in ("r_user_main", "r_user_password"):
            db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user.user_id,))
        db.execute("DELETE FROM r_user_group WHERE user_id = ? OR group_user_id = ?", (user.user_id, user.user_id))
        db.execute("DELETE FROM r_objt_access WHERE user_id = ?", (user.user_id,))
    elif args[1] == "resource":
        resc = catalog.resources.named(args[2])
        if catalog.resources.children.get(resc.resc_id) or db.execute(
                "SELECT 1 FROM r_data_main WHERE resc_id = ? LIMIT 1", (resc.resc_id,)).fetchone():
            raise ZoneError(errors.CAT_RESOURCE_NOT_EMPTY, f"resource {args[2]} is in use")
        catalog.forget_object(resc.resc_id)
        db.execute("DELETE FROM r_resc_main WHERE resc_id = ?", (resc.resc_id,))
        catalog.reload_resources()
    elif args[1] == "childfromresc":
        child = catalog.resources.named(args[3])
        db.execute("UPDATE r_resc_main SET resc_parent = '', resc_parent_context = '' WHERE resc_id = ?",
                   (child.resc_id,))
        catalog.reload_resources()
    elif args[1] == "unusedAVUs":
        db.execute("DELETE FROM r_meta_main WHERE meta_id NOT IN (SELECT meta_id FROM r_objt_metamap)")
    else:
        raise ZoneError(errors.SYS_NOT_SUPPORTED, f"rm {args[1]} is not supported")


_USER_COLUMNS = {"type": "user_type_name", "info": "user_info", "comment": "r_comment"}
_RESOURCE_COLUMNS = {"status": "resc_status", "comment": "r_comment", "context": "resc_context",
                     "path": "resc_def_path", "host": "resc_net", "type": "resc_type_name", "info": "resc_info",
                     "free_space": "free_space"}


def _user_or_fail(session: Session, name_and_zone: str, zone: str = "") -> User:
    name, _, explicit_zone = name_and_zone.partition("#")
    user = session.zone.catalog.user(name, explicit_zone or zone)
    if user is None:
        raise ZoneError(errors.CAT_INVALID_USER, f"user {name_and_zone} does not exist")
    return user


def _modify(session: Session, args: list[str]) -> None:
    catalog = session.zone.catalog
    if args[1] == "group" and args[3] in ("add", "remove"):
        group = _user_or_fail(session, args[2])
        member = _user_or_fail(session, args[4], args[5])
        if args[3] == "add":
            catalog.db.execute("INSERT OR IGNORE INTO r_user_group VALUES (?, ?)", (group.user_id, member.user_id))
        else:
            catalog.db.execute("DELETE FROM r_user_group WHERE group_user_id = ? AND user_id = ?",
                               (group.user_id, member.user_id))
    elif args[1] == "user":
        user = _user_or_fail(session, args[2])
        if args[3] == "password":
            catalog.set_password(user.user_id, descramble_password(args[4], _admin_password(session),
                                                                   session.signature))
        elif args[3] in _USER_COLUMNS:
            catalog.db.execute(f"UPDATE r_user_main SET {_USER_COLUMNS[args[3]]} = ?, modify_ts = ? "
                               "WHERE user_id = ?", (args[4], now_ts(), user.user_id))
        else:
            raise ZoneError(errors.SYS_NOT_SUPPORTED, f"modify user {args[3]} is not supported")
    elif args[1] == "resource" and args[3] in _RESOURCE_COLUMNS:
        resc = catalog.resources.named(args[2])
        catalog.db.execute(f"UPDATE r_resc_main SET {_RESOURCE_COLUMNS[args[3]]} = ?, modify_ts = ? "
                           "WHERE resc_id = ?", (args[4], now_ts(), resc.resc_id))
        catalog.reload_resources()
    else:
        raise ZoneError(errors.SYS_NOT_SUPPORTED, f"modify {args[1]} {args[3]} is not supported")


_SUBCOMMANDS = {"add": _add, "rm": _remove, "modify": _modify}


@api(701, "GENERAL_ADMIN_AN")
def general_admin(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    args = [body.str(f"arg{i}") for i in range(10)]
    session.require_admin()
    action = _SUBCOMMANDS.get(args[0])
    if action is None:
        raise ZoneError(errors.SYS_NOT_SUPPORTED, f"admin command {args[0]} is not supported")
    with session.zone.catalog.transaction():
        action(session, args)
    return Reply()


@api(714, "USER_ADMIN_AN")
def user_admin(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    args = [body.str(f"arg{i}") for i in range(10)]
    if args[0] != "userpw" or args[2] != "password":
        raise ZoneError(errors.SYS_NOT_SUPPORTED, f"user admin command {args[0]} is not supported")
    catalog = session.zone.catalog
    user = _user_or_fail(session, args[1])
    if user.user_id != session.client.user_id and not session.is_admin:
        raise ZoneError(errors.CAT_INSUFFICIENT_PRIVILEGE_LEVEL, "only your own password")
    old = catalog.password(session.client.user_id) or ""
    catalog.set_password(user.user_id, descramble_password(args[3], old, session.signature))
    return Reply()
