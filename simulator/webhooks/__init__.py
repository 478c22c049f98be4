"""Webhooks: endpoints, messages, the retry ladder on the tenant's clock, signing, faults.

Plain Python: nothing here sends HTTP. A :class:`~.hub.WebhookHub` turns platform and device
events into messages, schedules their attempts as events on the tenant's clock and, when one
falls due, hands the web layer (:mod:`amps_sim.simulator.web.delivery`) a ready job to send.
"""
