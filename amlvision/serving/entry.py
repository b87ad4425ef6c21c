"""The scoring entry points azmlinfsrv calls: ``init()`` once per worker, ``run()`` per request.

score.py (repo root, copied into the Docker image) re-exports these; ``amlvision serve`` points the
server at this file directly, so an installed package needs no separate script.
"""

from azureml_inference_server_http.api.aml_request import rawhttp

from amlvision.serving import schema, scoring


def init() -> None:
    service = scoring.init()
    schema.register(run, service.predictor)


@rawhttp
def run(request):
    return scoring.respond(request)
