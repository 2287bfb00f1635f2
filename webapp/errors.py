"""The app's answer to a request that fails validation: FastAPI's 422, without echoing the input back."""

from __future__ import annotations

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


async def validation_failed(request: Request, error: Exception) -> JSONResponse:
    """422 with where and why each field failed, like FastAPI's own handler but without the input.

    Echoing the input turned a body JSON cannot carry back (1e400 parses as infinity, `NaN` as NaN) into a 500.
    """
    assert isinstance(error, RequestValidationError)
    details = [{key: value for key, value in item.items() if key != "input"} for item in error.errors()]
    return JSONResponse({"detail": jsonable_encoder(details)}, status_code=422)
