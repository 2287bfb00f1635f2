"""Typed accessors of what the web app keeps on `app.state` for every router: database sessions and the gateway."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from bot.gateway import Gateway


def sessions_of(request: HTTPConnection) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def gateway_of(request: HTTPConnection) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway
