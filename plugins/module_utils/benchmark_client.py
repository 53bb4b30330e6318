# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One concurrency level of the benchmark with the collection's own gRPC streaming client.

``concurrency`` workers share ``requests`` requests; each sends its next one
when the previous one is done (a closed loop, as aiperf's --concurrency does),
on a gRPC channel of its own, through grpc_generate (the triton_infer
module's request path). A failed request is counted, never retried. Nothing
starts after ``deadline`` seconds; a request still running then is failed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading
import time

from ansible_collections.tritonfleet.serving.plugins.module_utils.benchmark import level_from_records
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    TritonError, error_text, one_line, triton_grpc)
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_generate import grpc_generate


def grpc_sender_factory(endpoint, model, request_timeout):
    """A sender per worker: a function inputs -> GenerationResult on that worker's own channel, and its closer."""
    client = triton_grpc.InferenceServerClient(url=endpoint.address, ssl=endpoint.ssl)

    def send(inputs, timeout):
        return grpc_generate(endpoint, model, inputs, min(request_timeout, timeout), client=client)

    def close():
        try:
            client.close()
        except Exception:
            pass

    return send, close


def run_level(endpoint, model, inputs, concurrency, requests, deadline, request_timeout,
              sender_factory=grpc_sender_factory, clock=time.monotonic):
    """Send ``requests`` requests from ``concurrency`` workers; returns a LEVEL (benchmark.level_from_records)."""
    if concurrency < 1 or requests < 1:
        raise ValueError('concurrency and requests must be at least 1')
    lock = threading.Lock()
    state = {'next': 0}
    records = []
    start = clock()
    deadline_at = start + deadline

    def take():
        with lock:
            if state['next'] >= requests or clock() >= deadline_at:
                return None
            state['next'] += 1
            record = {'ok': False, 'latency_s': None, 'first_token_s': None, 'tokens': 0, 'error': None}
            records.append(record)
            return record

    def work():
        send = close = None
        try:
            while True:
                record = take()
                if record is None:
                    return
                began = clock()
                try:
                    if send is None:
                        send, close = sender_factory(endpoint, model, request_timeout)
                    result = send(inputs, max(deadline_at - began, 0.001))
                    ended = clock()
                    if not result.responses:
                        raise TritonError('the answer carried no tokens')
                    record.update(ok=True, latency_s=ended - began, first_token_s=result.first,
                                  tokens=result.responses)
                except TritonError as exc:
                    record['error'] = one_line(exc.msg, 300)
                except Exception as exc:  # any failure is a failed request, never a retry
                    record['error'] = one_line(error_text(exc), 300)
        finally:
            if close is not None:
                close()

    threads = [threading.Thread(target=work, name='benchmark-%d' % n) for n in range(min(concurrency, requests))]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline_at + 1.0 - clock()))
    with lock:
        duration = clock() - start
        state['next'] = requests
        for record in records:
            if not record['ok'] and record['error'] is None:
                record['error'] = 'still running at the deadline (%ss)' % deadline
        snapshot = [dict(r) for r in records]
    level = level_from_records(concurrency, snapshot, duration)
    # A request the deadline kept from starting is a failure of the level too.
    level['unsent'] = requests - len(snapshot)
    if level['unsent']:
        level['errors'] += level['unsent']
        level['requests'] = requests
        level['error_samples'].append('%d requests not sent within the deadline (%ss)' % (level['unsent'], deadline))
    return level
