"""Build and check, offline, the objects the Azure ML SDKs send: run configs, jobs, models, endpoints.

``v1`` is azureml-core (RunConfiguration, ScriptRunConfig, Environment, Model, webservice deploy
configurations); ``v2`` is azure-ai-ml (command jobs, managed online endpoints and deployments).
Everything here runs without a network or a subscription; only ``workspace.connect_*`` and the
``submit``/``deploy`` commands without ``--dry-run`` talk to Azure.
"""
