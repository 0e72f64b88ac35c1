"""The stages of a dispatch batch, in pipeline order (see :func:`sms_worker.dispatch.service.build_pipeline`)."""
