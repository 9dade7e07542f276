"""Pure-Python core: values, protocols and the chain engine. No UI or model library imports."""
