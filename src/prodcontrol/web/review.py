"""``/review``: the operating review page in ``prodcontrol serve`` (the same page the CLI writes).

Read-only; the app's authentication middleware guards it like every other page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from prodcontrol.control.reports.review_report import build, render_html
from prodcontrol.errors import UsageError
from prodcontrol.runtime import Runtime
from prodcontrol.web.deps import get_runtime

router = APIRouter()
Rt = Annotated[Runtime, Depends(get_runtime)]


@router.get("/review", response_class=HTMLResponse)
def operating_review(
    request: Request,
    rt: Rt,
    period: Annotated[str | None, Query(description="YYYY-MM; default: this month")] = None,
    tier: Annotated[str | None, Query(description="only this tier")] = None,
) -> Response:
    now = rt.clock.now()
    label = period or f"{now.year:04d}-{now.month:02d}"
    try:
        review = build(rt.store, rt.config, label, now, tier=tier or None)
    except UsageError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    return HTMLResponse(render_html(review, viewer=request.state.viewer))
