"""Thin kopf handlers: decode the object, ask the domain, call one adapter, record status."""
