"""GET /openapi.json: the whole API's contract, as committed beside this function (see `make openapi`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"


@cache
def document() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


@router.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type="application/json",
        body=document(),
        headers={"Cache-Control": "max-age=300"},
    )
