"""The local stack: moto's server as the embedded AWS, and an HTTP gateway that routes
from ``template.yaml`` exactly as API Gateway does, to the functions' own handlers.

    python -m local_stack      (what ``make run`` starts)
"""
