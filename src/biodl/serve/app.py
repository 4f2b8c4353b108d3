"""The FastAPI application: one loaded model, micro-batched predictions, saliency, a web page.

Endpoints: ``GET /`` (web page), ``GET /health``, ``GET /model`` (model card),
``POST /predict``, ``POST /explain``, ``GET /openapi.json``. Every request error (malformed
JSON, wrong field types, records the data type rejects, undecodable images, too many inputs,
too large a body) is answered with a 4xx status and ``{"detail": message}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from biodl._version import __version__
from biodl.errors import BiodlError
from biodl.serve.batching import MicroBatcher, Overloaded
from biodl.serve.card import model_card, prediction_records
from biodl.serve.explain import EXPLAINERS, saliency_png
from biodl.serve.limits import BodySizeLimit
from biodl.serve.payload import (
    RequestError,
    decode_predict,
    encode_predictions,
    numeric_rows,
    sequence_rows,
    validation_detail,
)
from biodl.serve.schemas import ErrorBody, ExplainRequest, ExplainResponse, Health, Prediction, PredictRequest, PredictResponse

if TYPE_CHECKING:
    from biodl.bundle import Bundle
    from biodl.engine import EngineChoice

#: Default limits.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH = 256
#: Bodies up to this size are parsed and encoded on the event loop (a thread hand-off costs more).
INLINE_BODY_BYTES = 64 * 1024
#: ``POST /predict`` reads its raw body (orjson); its documented schema is still :class:`PredictRequest`.
_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
    }
}

#: Exceptions a data type's ``parse_inputs``/``transform`` may raise for bad records (PIL: OSError subclasses).
_RECORD_ERRORS = (ValueError, TypeError, KeyError, IndexError, binascii.Error, UnicodeError, OverflowError, OSError)

_CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'"
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        413: "body or batch too large",
        422: "invalid request or records",
        503: "server busy",
    }.items()
}


class ServeApp(FastAPI):
    """FastAPI whose hot ``POST`` routes are answered before its middleware stack.

    ``POST /predict`` goes straight to :class:`~biodl.serve.limits.BodySizeLimit` with its raw-body
    handler (the same limit, the same answers), skipping Starlette's error, exception and
    body-limit middlewares and the router: on single-row requests of a small model those layers
    cost as much as the model. Every other request takes FastAPI's usual path.
    """

    fast_routes: BodySizeLimit | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fast = self.fast_routes
        if fast is not None and scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in fast.routes:
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _static(name: str) -> bytes:
    return resources.files("biodl.serve").joinpath("static", name).read_bytes()


def _validation_detail(exc: RequestValidationError) -> str:
    return validation_detail(list(exc.errors()))


def create_app(
    bundle: Bundle, engine: EngineChoice, max_body_bytes: int = MAX_BODY_BYTES, max_batch: int = MAX_BATCH, *, example: Any = None
) -> FastAPI:
    """The REST application for one loaded bundle.

    Parameters
    ----------
    bundle
        The loaded model bundle (loaded once, shared by all requests).
    engine
        The inference engine (:func:`biodl.engine.select_engine`) that runs predictions.
    max_body_bytes
        Larger request bodies are refused with 413.
    max_batch
        Most inputs per request, and most rows per model call.
    example
        An example request input shown on the model card and the web page.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="biodl-model")
    batcher = MicroBatcher(engine.engine.predict, executor, max_batch=max_batch)
    modality = bundle.modality
    limits = {"max_body_bytes": int(max_body_bytes), "max_batch": int(max_batch)}
    card = model_card(bundle, engine=engine.to_dict(), example=example, limits=limits)
    feature_names = getattr(modality, "feature_names", None)
    alphabet = getattr(getattr(modality, "alphabet", None), "symbols", None)
    row_labels = list(alphabet) if isinstance(alphabet, str) else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            executor.shutdown(wait=False)

    app = ServeApp(
        title=f"biodl model {card['name']}",
        version=__version__,
        description=f"Predictions of a biodl {bundle.kind} model on {modality.name} inputs.",
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    bag_lock = threading.Lock()  # bags: instance names live on the data type between parse and read-back
    bags = callable(getattr(bundle.model, "instance_outputs", None))
    width = len(feature_names) if isinstance(feature_names, list) and modality.name == "tabular" else None
    # plain sequences of the model's length: one-hot in one pass (anything else: the data type's parser)
    letters: Any = getattr(modality, "alphabet", None)
    length = getattr(modality, "length", None)
    one_hot: tuple[bytes, int, int] | None = None
    plain = modality.name == "sequence" and not getattr(modality.cfg, "per_position", False)
    if plain and isinstance(length, int) and length > 0 and isinstance(getattr(letters, "table", None), bytes):
        one_hot = (letters.table, int(letters.size), length)

    def model_inputs(records: list[Any], notes: list[str] | None = None) -> np.ndarray:
        X, _ = bag_inputs(records) if bags else (inputs(records, notes), None)
        return X

    def bag_inputs(records: list[Any]) -> tuple[np.ndarray, list[list[str]]]:
        with bag_lock:
            X = inputs(records)
            return X, [list(n) for n in getattr(modality, "instance_names", [])]

    def instance_weights(X: np.ndarray) -> np.ndarray:
        from biodl.data.bag_figures import instance_weights as weights

        with bag_lock:  # the torch model, outside the batcher (weights are not an engine output)
            out = weights(bundle.model, X)
        assert out is not None
        return out[0]

    def inputs(records: list[Any], notes: list[str] | None = None) -> np.ndarray:
        """Model inputs of request records; ``notes`` (if given) receives one note per record on what was changed."""
        try:
            if one_hot is not None and (X := sequence_rows(records, *one_hot)) is not None:
                return X
            fast = numeric_rows(records, width) if width is not None else None
            raw = fast if fast is not None else modality.parse_inputs(records)
            describe = getattr(modality, "input_notes", None)  # Modality's hook (absent on duck-typed stand-ins)
            if notes is not None and fast is None and callable(describe):
                notes.extend(describe(raw) or [])
            return np.asarray(modality.transform(raw))
        except NotImplementedError as exc:
            raise RequestError(501, str(exc) or f"data type {modality.name!r} cannot parse request inputs") from None
        except BiodlError as exc:
            raise RequestError(422, str(exc)) from None
        except _RECORD_ERRORS as exc:
            raise RequestError(422, f"invalid input: {exc}") from None

    active = [0]  # /predict requests in flight

    async def run_model(X: np.ndarray) -> np.ndarray:
        try:
            return await batcher.submit(X, alone=active[0] == 1)
        except Overloaded as exc:
            raise RequestError(503, str(exc)) from None

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> Health:
        s = batcher.stats
        return Health(
            status="ok",
            model=str(card["name"]),
            engine=engine.engine.name,
            requests=s.requests,
            model_calls=s.calls,
            rows=s.rows,
            largest_batch=s.largest_batch,
        )

    @app.get("/model", tags=["service"])
    async def model() -> dict[str, Any]:
        """The model card: task, inputs, labels, metrics, versions, engine and limits."""
        return card

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS, tags=["model"], openapi_extra=_PREDICT_BODY)
    async def predict(request: Request) -> Response:
        """Predictions for a batch of inputs (a :class:`PredictRequest` body)."""
        # Answered by ``answer_predict`` in the BodySizeLimit middleware; this route documents it.
        return Response(await answer_predict(await request.body()), media_type="application/json")

    async def answer_predict(raw_body: bytes) -> bytes:
        """The JSON answer to a raw ``POST /predict`` body (raises :class:`RequestError`)."""
        active[0] += 1
        try:
            return await predict_body(raw_body)
        finally:
            active[0] -= 1

    async def predict_body(raw_body: bytes) -> bytes:
        body = decode_predict(raw_body)
        if len(body.inputs) > max_batch:
            raise RequestError(413, f"too many inputs: {len(body.inputs)} > {max_batch} per request")
        if bags:  # multiple-instance models: the bag prediction and a weight per instance
            X, names = await run_in_threadpool(bag_inputs, list(body.inputs))
            out = await run_model(X)
            weights = await run_in_threadpool(instance_weights, X)
            records = prediction_records(bundle, out)
            for rec, n, w in zip(records, names, weights, strict=True):
                rec.update(instances=n, instance_weights=[float(v) for v in w[: len(n)]])
            return encode_predictions(records)
        small = len(raw_body) <= INLINE_BODY_BYTES
        notes: list[str] = []
        X = model_inputs(body.inputs, notes) if small else await run_in_threadpool(model_inputs, body.inputs, notes)
        out = await run_model(X)
        if bundle.kind == "segmentation":  # PNG encoding of large masks: off the event loop
            records = await run_in_threadpool(prediction_records, bundle, out, probability_maps=body.probability_maps)
        elif bundle.kind == "positions":  # label strings as long as each input sequence
            from biodl.data.positions import sequence_lengths

            # strings: their length; records with per-position feature tracks: the end of their non-zero input
            ends = sequence_lengths(X)
            lengths = np.array([len(r) if isinstance(r, str) else int(n) for r, n in zip(body.inputs, ends, strict=True)])
            records = prediction_records(bundle, out, lengths=lengths)
        else:
            records = prediction_records(bundle, out)
        for rec, note in zip(records, notes, strict=False):  # inputs changed before prediction, said per input
            if note:
                rec["notes"] = [note]
        return encode_predictions(records) if small else await run_in_threadpool(encode_predictions, records)

    def explain_one(record: Any, target: int | str | None, method: str) -> ExplainResponse:
        if bundle.kind == "positions":
            raise RequestError(
                501,
                "explanations of per-position models are not served; use biodl explain --position I "
                "(attributions of each residue to the label of position I)",
            )
        if bundle.kind == "segmentation":
            raise RequestError(
                501,
                "explanations of segmentation models are not served; "
                "use biodl explain --method {saliency,ig,occlusion,gradcam,lime}",
            )
        try:
            explainer = EXPLAINERS[method]
        except BiodlError as exc:
            raise RequestError(422, str(exc)) from None
        X = model_inputs([record])
        out = engine.engine.predict(X)
        pred = prediction_records(bundle, out)[0]
        names = bundle.classes if bundle.kind == "multiclass" else bundle.target_names
        names = list(names or [])
        k = int(out.shape[1])
        if target is None:
            index = int(np.nanargmax(out[0])) if bundle.kind == "multiclass" else 0
        elif isinstance(target, int):
            if not 0 <= target < k:
                raise RequestError(422, f"target index {target} out of range (the model has {k} outputs)")
            index = target
        elif target in names:
            index = names.index(target)
        elif bundle.kind == "binary" and bundle.classes and target in bundle.classes and k == 1:
            index = 0
        else:
            raise RequestError(422, f"unknown target {target!r}; choose one of {names}")
        label = names[index] if index < len(names) else str(index)
        sal = explainer(bundle.model, X[0], index)
        title = f"{method.replace('_x_', ' × ').replace('_', ' ')} for {label!r}"
        png = saliency_png(sal, title=title, feature_names=feature_names, row_labels=row_labels)
        return ExplainResponse(
            method=method,
            target=label,
            target_index=index,
            score=sal.score,
            prediction=Prediction(**pred),
            shape=list(sal.values.shape),
            attributions=sal.values.tolist(),
            features=list(feature_names) if feature_names is not None and sal.values.ndim == 1 else None,
            image_png_base64=base64.b64encode(png).decode("ascii"),
        )

    @app.post("/explain", response_model=ExplainResponse, responses=_ERRORS, tags=["model"])
    async def explain(body: ExplainRequest) -> ExplainResponse:
        """Gradient × input saliency of one input (PyTorch autograd), with a picture."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, explain_one, body.input, body.target, body.method)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> Response:
        return Response(_static("index.html"), media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": _CSP})

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        types = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
        if name not in types:
            raise RequestError(404, "not found")
        return Response(_static(name), media_type=types[name], headers={"Cache-Control": "no-cache"})

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:  # the raw-body /predict still documents PredictRequest
        if app.openapi_schema is None:
            schema = base_openapi()
            defs = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(defs.pop("$defs", {}))
            components["PredictRequest"] = defs
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodySizeLimit, max_bytes=int(max_body_bytes), routes={"/predict": answer_predict})
    app.fast_routes = BodySizeLimit(app.router, int(max_body_bytes), routes={"/predict": answer_predict})
    return app
