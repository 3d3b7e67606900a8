"""Checks of keyword arguments before they reach the library.

Types are checked here (TypeError naming the argument), and ranges that Python can say
better than C (ValueError naming the argument). What only the library knows (an IP literal,
the RTP range's evenness, a URL's scheme) it checks itself and raises
InvalidArgumentError, a ValueError whose message names the field too.
"""

from __future__ import annotations

import asyncio
import difflib
import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from . import _ivr

DEFAULTS: Dict[str, Any] = dict(_ivr.DEFAULTS)

TRANSPORTS = {"udp": 0, "tcp": 1, "udp_tcp": 2}
LOG_LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3, "trace": 4}
UINT_MAX = 2**32 - 1


def _type_name(value: Any) -> str:
    return type(value).__name__


def _fail_type(where: str, name: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{where}: {name}: expected {expected}, got {_type_name(value)} ({value!r})")


def check_int(where: str, name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail_type(where, name, "int", value)
    if not lo <= value <= hi:
        raise ValueError(f"{where}: {name}: must be {lo}..{hi}, got {value}")
    return value


def check_str(where: str, name: str, value: Any, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail_type(where, name, "str", value)
    if not empty and not value:
        raise ValueError(f"{where}: {name}: must not be empty")
    if "\0" in value:
        raise ValueError(f"{where}: {name}: contains a NUL character")
    return value


def check_optional_str(where: str, name: str, value: Any) -> str:
    """None or a str; None becomes "" (the library's default)."""
    return "" if value is None else check_str(where, name, value)


def check_path(where: str, name: str, value: Any, *, optional: bool = False) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, (str, os.PathLike)):
        raise _fail_type(where, name, "str or os.PathLike" + (" or None" if optional else ""), value)
    path = os.fspath(value)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return check_str(where, name, path)


def check_bool(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail_type(where, name, "bool", value)
    return value


def check_choice(where: str, name: str, value: Any, choices: Mapping[str, int]) -> int:
    if not isinstance(value, str):
        raise _fail_type(where, name, "str", value)
    if value not in choices:
        raise ValueError(f"{where}: {name}: must be one of {', '.join(choices)}, got {value!r}")
    return choices[value]


def reject_unknown(where: str, given: Mapping[str, Any], known: Tuple[str, ...]) -> None:
    for key in given:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise TypeError(f"{where}: unexpected keyword argument {key!r}{more}")


ENGINE_OPTIONS: Tuple[str, ...] = (
    "sip_address",
    "sip_port",
    "sip_transport",
    "rtp_address",
    "rtp_port_min",
    "rtp_port_max",
    "media_threads",
    "prompt_dir",
    "log",
    "log_level",
    "user_agent",
    "webhook_spool_dir",
    "webhook_spool_max_bytes",
    "workers",
    "loop",
)


def engine_options(given: Mapping[str, Any]) -> Dict[str, Any]:
    """The validated options of ivr.Engine(**given), defaults filled in, ready for
    _ivr.Engine (plus "workers", "loop" and "log", which Python keeps)."""
    where = "Engine()"
    reject_unknown(where, given, ENGINE_OPTIONS)
    g = dict(given)

    def get(name: str) -> Any:
        return g.get(name, DEFAULTS.get(name))

    o: Dict[str, Any] = {}
    o["sip_address"] = check_str(where, "sip_address", get("sip_address"), empty=False)
    o["sip_port"] = check_int(where, "sip_port", get("sip_port"), 0, 65535)
    o["sip_transport"] = check_choice(where, "sip_transport", g.get("sip_transport", "udp"), TRANSPORTS)
    o["rtp_address"] = check_optional_str(where, "rtp_address", g.get("rtp_address"))
    o["rtp_port_min"] = check_int(where, "rtp_port_min", get("rtp_port_min"), 1, 65535)
    o["rtp_port_max"] = check_int(where, "rtp_port_max", get("rtp_port_max"), 1, 65535)
    if o["rtp_port_min"] > o["rtp_port_max"]:
        raise ValueError(
            f"{where}: rtp_port_min: must not be above rtp_port_max "
            f"({o['rtp_port_min']} > {o['rtp_port_max']})"
        )
    o["media_threads"] = check_int(where, "media_threads", get("media_threads"), 1, 64)
    o["prompt_dir"] = check_path(where, "prompt_dir", get("prompt_dir"))
    log = g.get("log")
    if log is not None and log is not True and not callable(log):
        raise _fail_type(where, "log", "a callable(level, subsystem, message), True or None", log)
    o["log"] = log
    o["log_level"] = check_choice(where, "log_level", g.get("log_level", "info"), LOG_LEVELS)
    o["user_agent"] = check_optional_str(where, "user_agent", g.get("user_agent"))
    o["webhook_spool_dir"] = check_path(
        where, "webhook_spool_dir", g.get("webhook_spool_dir"), optional=True
    )
    o["webhook_spool_max_bytes"] = check_int(
        where, "webhook_spool_max_bytes", g.get("webhook_spool_max_bytes", 0), 0, 2**64 - 1
    )
    o["workers"] = check_int(where, "workers", g.get("workers", 4), 1, 256)
    loop = g.get("loop")
    if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
        raise _fail_type(where, "loop", "an asyncio event loop or None", loop)
    o["loop"] = loop
    return o


def check_name(where: str, value: Any) -> str:
    return check_str(where, "name", value, empty=False)


def check_callable(where: str, name: str, value: Any) -> Callable[..., Any]:
    if not callable(value):
        raise _fail_type(where, name, "a callable", value)
    return value  # type: ignore[no-any-return]


def optional_callable(where: str, name: str, value: Any) -> Optional[Callable[..., Any]]:
    return None if value is None else check_callable(where, name, value)
