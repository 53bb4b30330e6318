# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The steps of tests/gpu/h100_smoke.sh after the wheels are installed (run it through the .sh).

Every collection piece is used the way Ansible uses it: modules run as scripts with an args file
(``python3 -m ansible_collections.tritonfleet.serving.plugins.modules.NAME args.json``), the layout
filter is imported and called. Steps after a failed step still run when they do not depend on it;
the exit status is 1 when any check failed. Results go to OUT/results.json, OUT/gpu_facts.json and
OUT/logs.txt; the summary is printed at the end.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_PREFIX = 'ansible_collections.tritonfleet.serving.plugins.modules.'
MODEL = 'gpu_probe'
MIB = 1024 * 1024
# Variables the device machines ask to keep set in every environment a program gets.
KEEP_ENV = ('NCCL_NVLS_ENABLE', 'TORCH_SYMM_MEM_DISABLE_MULTICAST', 'NVSHMEM_DISABLE_NVLS', 'CUDA_VISIBLE_DEVICES',
            'NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'TMPDIR', 'LANG', 'LC_ALL')

MODEL_CONFIG = '''name: "%(name)s"
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [
  { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] },
  { name: "DOT" data_type: TYPE_FP32 dims: [ 1 ] },
  { name: "DEVICE" data_type: TYPE_UINT8 dims: [ -1 ] }
]
instance_group [ %(instance_group)s ]
parameters: { key: "site_dirs" value: { string_value: "%(site_dirs)s" } }
'''


class Smoke(object):

    def __init__(self, opts):
        self.opts = opts
        self.cpu = opts.cpu
        self.out = opts.out
        self.work = opts.work
        self.site_dir = opts.site
        self.results = {
            'mode': 'cpu (H100_SMOKE_CPU=1)' if self.cpu else 'gpu',
            'started_at': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
            'checks': [],
            'modules': [],
            'servers': {},
        }
        self.failed = []
        self.module_count = 0
        self.instances = []
        self.started = {}     # name -> process_service result
        self.gpu = None       # gpu 0 of gpu_facts

    # ------------------------------------------------------------------ bookkeeping

    def check(self, name, ok, detail=''):
        ok = bool(ok)
        self.results['checks'].append({'check': name, 'ok': ok, 'detail': detail})
        print('[%s] %s%s' % ('PASS' if ok else 'FAIL', name, (': %s' % detail) if detail else ''), flush=True)
        if not ok:
            self.failed.append(name)
        return ok

    def note(self, text):
        print('       %s' % text, flush=True)

    def run_module(self, name, args, label=None, timeout=300):
        """Run a module as Ansible does (a script with an args file); return (rc, result dict)."""
        self.module_count += 1
        args_file = os.path.join(self.work, 'args', '%02d_%s.json' % (self.module_count, label or name))
        os.makedirs(os.path.dirname(args_file), exist_ok=True)
        with open(args_file, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, handle, indent=2)
        argv = [sys.executable, '-m', MODULE_PREFIX + name, args_file]
        began = time.monotonic()
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                  check=False, cwd=self.work)
            rc, stdout, stderr = proc.returncode, proc.stdout.decode('utf-8', 'replace'), \
                proc.stderr.decode('utf-8', 'replace')
        except subprocess.TimeoutExpired as exc:
            rc, stdout, stderr = 124, (exc.stdout or b'').decode('utf-8', 'replace'), 'timed out after %ss' % timeout
        elapsed = time.monotonic() - began
        result = None
        text = stdout.strip()
        for candidate in (text, text[text.find('{'):] if '{' in text else ''):
            try:
                result = json.loads(candidate)
                break
            except ValueError:
                continue
        if result is None:
            result = {'failed': True, 'msg': 'module printed no JSON', 'stdout': stdout[-4000:]}
        self.results['modules'].append({
            'module': name, 'label': label or name, 'args_file': os.path.basename(args_file), 'args': args,
            'rc': rc, 'seconds': round(elapsed, 3), 'result': result, 'stderr': stderr[-4000:],
        })
        return rc, result

    # ------------------------------------------------------------------ environment

    def python_runtime(self):
        """Where the stub finds libpythonX.Y, the stdlib and this python's site-packages."""
        soname = sysconfig.get_config_var('INSTSONAME') or 'libpython%d.%d.so.1.0' % sys.version_info[:2]
        if not soname.endswith('.so.1.0') and '.so' not in soname:
            soname = 'libpython%d.%d.so.1.0' % sys.version_info[:2]
        candidates = [sysconfig.get_config_var('LIBDIR'), os.path.join(sys.base_prefix, 'lib'),
                      os.path.join(sys.base_prefix, 'lib64'), '/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu',
                      '/usr/local/lib', '/usr/lib64', '/usr/lib']
        libdir = None
        for directory in candidates:
            if directory and os.path.exists(os.path.join(directory, soname)):
                libdir = directory
                break
        searched = None
        if libdir is None:
            # Last resort: any copy of the library on the host (bounded; reported in results.json).
            try:
                found = subprocess.run(['find', '/', '-xdev', '-name', soname, '-not', '-path', '/proc/*'],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30,
                                       check=False).stdout.decode('utf-8', 'replace').split()
            except (OSError, subprocess.TimeoutExpired) as exc:
                found = []
                searched = 'find failed: %s' % exc
            searched = searched or found
            if found:
                libdir = os.path.dirname(found[0])
        site_dirs = [p for p in site.getsitepackages() if os.path.isdir(p)]
        user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
        if user_site and os.path.isdir(user_site):
            site_dirs.append(user_site)
        driver_libs = {}
        try:
            cache = subprocess.run(['ldconfig', '-p'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   check=False).stdout.decode('utf-8', 'replace')
        except OSError:
            cache = ''
        for lib in ('libcuda.so.1', 'libnvidia-ml.so.1'):
            found = [line.split('=>')[-1].strip() for line in cache.splitlines() if line.strip().startswith(lib + ' ')]
            if not found:
                found = [os.path.join(d, lib) for d in ('/usr/local/nvidia/lib64', '/usr/local/nvidia/lib',
                                                        '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib/wsl/lib')
                         if os.path.exists(os.path.join(d, lib))]
            driver_libs[lib] = {'paths': found, 'in_ld_cache': lib + ' ' in cache}
        return {
            'driver_libs': driver_libs,
            'executable': sys.executable,
            'version': sys.version.split()[0],
            'tag': '%d.%d' % sys.version_info[:2],
            'base_prefix': sys.base_prefix,
            'prefix': sys.prefix,
            'libpython': soname,
            'libpython_dir': libdir,
            'libpython_searched': searched,
            'site_dirs': site_dirs,
            'bin_dir': os.path.dirname(sys.executable),
        }

    def prepare_backends(self, runtime):
        """B/python/ = the wheel's python backend files + the stub for this Python."""
        tritonserver_root = os.path.join(self.site_dir, 'pytriton', 'tritonserver')
        binary = os.path.join(tritonserver_root, 'bin', 'tritonserver')
        stub = os.path.join(tritonserver_root, 'python_backend_stubs', runtime['tag'], 'triton_python_backend_stub')
        backends = os.path.join(self.work, 'backends')
        target = os.path.join(backends, 'python')
        shutil.copytree(os.path.join(tritonserver_root, 'backends', 'python'), target,
                        ignore=shutil.ignore_patterns('__pycache__'))
        shutil.copy2(stub, target)
        return binary, backends, os.path.join(target, 'triton_python_backend_stub')

    def server_env(self, runtime):
        ld_paths = [os.path.join(self.site_dir, 'nvidia_pytriton.libs')]
        if runtime['libpython_dir']:
            ld_paths.append(runtime['libpython_dir'])
        # DCGM (GPU metrics) dlopens libnvidia-ml.so.1 and CUDA needs libcuda.so.1: add their
        # directory when the loader's cache does not know them.
        for info in runtime['driver_libs'].values():
            if info['paths'] and not info['in_ld_cache']:
                directory = os.path.dirname(info['paths'][0])
                if directory not in ld_paths:
                    ld_paths.append(directory)
        if os.environ.get('LD_LIBRARY_PATH'):
            ld_paths.append(os.environ['LD_LIBRARY_PATH'])
        env = {
            'PATH': os.pathsep.join([runtime['bin_dir'], os.environ.get('PATH', '/usr/bin:/bin')]),
            'LD_LIBRARY_PATH': os.pathsep.join(ld_paths),
            # The stub embeds libpythonX.Y: point it at this python's stdlib and site-packages.
            'PYTHONHOME': runtime['base_prefix'],
            'PYTHONPATH': os.pathsep.join(runtime['site_dirs']),
            'PYTHONUNBUFFERED': '1',
            'HOME': os.environ.get('HOME', '/root'),
        }
        for key in KEEP_ENV:
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    def write_model_repository(self, runtime):
        root = os.path.join(self.work, 'models')
        os.makedirs(os.path.join(root, MODEL, '1'))
        if self.cpu:
            group = '{ kind: KIND_CPU, count: 1 }'
        else:
            group = '{ kind: KIND_GPU, count: 1, gpus: [ 0 ] }'
        with open(os.path.join(root, MODEL, 'config.pbtxt'), 'w') as handle:
            handle.write(MODEL_CONFIG % {'name': MODEL, 'instance_group': group,
                                         'site_dirs': os.pathsep.join(runtime['site_dirs'])})
        shutil.copy2(os.path.join(HERE, 'gpu_probe_model.py'), os.path.join(root, MODEL, '1', 'model.py'))
        return root

    # ------------------------------------------------------------------ steps

    def step_gpu_facts(self):
        rc, result = self.run_module('gpu_facts', {}, label='gpu_facts')
        with open(os.path.join(self.out, 'gpu_facts.json'), 'w') as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
        facts = result.get('ansible_facts') or {}
        self.results['gpu_facts'] = facts
        if not self.check('gpu_facts module ran', rc == 0 and not result.get('failed'),
                          'rc=%s %s' % (rc, result.get('msg', ''))):
            return
        gpus = facts.get('tritonfleet_gpus') or []
        if self.cpu:
            self.check('gpu_facts reports an accelerator', facts.get('tritonfleet_accelerator') in ('cpu', 'gpu'),
                       'accelerator=%s reason=%r' % (facts.get('tritonfleet_accelerator'),
                                                     facts.get('tritonfleet_accelerator_reason')))
        else:
            self.check('gpu_facts finds a GPU', facts.get('tritonfleet_accelerator') == 'gpu' and gpus,
                       'accelerator=%s count=%s reason=%r' % (facts.get('tritonfleet_accelerator'),
                                                              facts.get('tritonfleet_gpu_count'),
                                                              facts.get('tritonfleet_accelerator_reason')))
        if gpus:
            self.gpu = gpus[0]
            if not self.cpu:
                self.check('gpu_facts GPU 0 has uuid, memory and compute capability',
                           self.gpu.get('uuid') and (self.gpu.get('memory_total_mib') or 0) > 0
                           and self.gpu.get('compute_capability'),
                           '%s %s %s MiB cc %s' % (self.gpu.get('name'), self.gpu.get('uuid'),
                                                   self.gpu.get('memory_total_mib'), self.gpu.get('compute_capability')))

    def step_layout(self):
        from ansible_collections.tritonfleet.serving.plugins.filter.serving import (
            triton_instance_conflicts, triton_instances)
        base = self.opts.port_base
        host_gpus = [g['index'] for g in (self.results.get('gpu_facts') or {}).get('tritonfleet_gpus', [])]
        # Two servers share GPU 0, as the servers role lays them out with servers_instances_per_gpu=2.
        self.instances = triton_instances(2, http_port_base=base, grpc_port_base=base + 1,
                                          metrics_port_base=base + 2, port_stride=10,
                                          shm_region_prefix='h100smoke', name_prefix='smoketriton',
                                          gpu_ids=[] if self.cpu else host_gpus[:1],
                                          gpus_per_instance=0 if self.cpu else 1,
                                          instances_per_gpu=1 if self.cpu else 2)
        host_gpu_ids = None if self.cpu else [g['index'] for g in (self.results.get('gpu_facts') or {})
                                              .get('tritonfleet_gpus', [])]
        problems = triton_instance_conflicts(self.instances, host_gpu_ids=host_gpu_ids)
        self.results['instances'] = self.instances
        self.results['instance_conflicts'] = problems
        ports = [i[k] for i in self.instances for k in ('http_port', 'grpc_port', 'metrics_port')]
        prefixes = [i['shm_region_prefix'] for i in self.instances]
        self.check('triton_instances gives distinct ports and shm prefixes, no conflicts',
                   not problems and len(set(ports)) == 6 and len(set(prefixes)) == 2,
                   '; '.join(problems) or ', '.join('%s http/grpc/metrics %d/%d/%d shm %s' % (
                       i['name'], i['http_port'], i['grpc_port'], i['metrics_port'], i['shm_region_prefix'])
                       for i in self.instances))

    def step_engine_fit(self):
        """engine_info refuses an engine recorded for another SKU than this GPU's, and accepts its own."""
        sku = (self.results.get('gpu_facts') or {}).get('tritonfleet_gpu_sku')
        outcomes = {}
        for label, recorded in (('own', sku), ('other', 'NVIDIA-L40S')):
            engine = os.path.join(self.work, 'engine-%s' % label)
            os.makedirs(engine, exist_ok=True)
            with open(os.path.join(engine, 'config.json'), 'w') as handle:
                json.dump({'version': '0.7.1', 'pretrained_config': {
                    'mapping': {'world_size': 1, 'tp_size': 1, 'pp_size': 1}}}, handle)
            with open(os.path.join(engine, 'tritonfleet-engine.json'), 'w') as handle:
                json.dump({'key': '0' * 64, 'inputs': {'key_inputs': {'gpu_sku': recorded,
                                                                      'trtllm_version': '0.7.1'}}}, handle)
            rc, result = self.run_module('engine_info', {'engine_dir': engine, 'expect': {
                'gpu_sku': sku, 'tp_size': 1, 'pp_size': 1, 'trtllm_version': '0.7.1'}}, label='engine_%s' % label)
            outcomes[label] = (rc, result)
        own, other = outcomes['own'][1], outcomes['other'][1]
        self.check('engine_info accepts an engine built on this SKU (%s)' % sku,
                   not own.get('failed') and own.get('mismatches') == [], own.get('msg', ''))
        self.check('engine_info refuses an engine built on another SKU',
                   other.get('failed') and 'gpu_sku is NVIDIA-L40S, but %s is needed' % sku in other.get('msg', ''),
                   other.get('msg', ''))

    def step_start(self, binary, backends, repo, env):
        run_dir = os.path.join(self.work, 'run')
        for inst in self.instances:
            log_file = os.path.join(self.work, 'logs', '%s.log' % inst['name'])
            command = [
                binary, '--model-repository=%s' % repo, '--backend-directory=%s' % backends,
                '--http-port=%d' % inst['http_port'], '--grpc-port=%d' % inst['grpc_port'],
                '--metrics-port=%d' % inst['metrics_port'], '--allow-metrics=true', '--allow-gpu-metrics=true',
                '--metrics-interval-ms=500', '--exit-timeout-secs=20',
                '--backend-config=python,shm-region-prefix-name=%s' % inst['shm_region_prefix'],
            ]
            began = time.monotonic()
            rc, result = self.run_module('process_service', {
                'name': inst['name'], 'command': command, 'environment': env, 'run_dir': run_dir,
                'log_file': log_file, 'fingerprint_paths': [repo],
                'ports': [inst['http_port'], inst['grpc_port'], inst['metrics_port']],
                'state': 'started', 'start_grace': 1.0, 'stop_timeout': 60,
            }, label='start_%s' % inst['name'])
            server = {'log_file': log_file, 'start_began': began, 'pid': result.get('pid'),
                      'module_seconds': round(time.monotonic() - began, 3)}
            self.results['servers'][inst['name']] = server
            if self.check('process_service started %s' % inst['name'],
                          rc == 0 and result.get('action') == 'started' and result.get('pid'),
                          'pid=%s action=%s %s' % (result.get('pid'), result.get('action'), result.get('msg', ''))):
                self.started[inst['name']] = result

    def wait_ready(self, timeout):
        pending = [i for i in self.instances if i['name'] in self.started]
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for inst in list(pending):
                server = self.results['servers'][inst['name']]
                if http_status('http://127.0.0.1:%d/v2/health/ready' % inst['http_port']) == 200:
                    server['time_to_ready_s'] = round(time.monotonic() - server['start_began'], 2)
                    pending.remove(inst)
                    self.check('%s ready (/v2/health/ready 200)' % inst['name'], True,
                               '%.2f s after process_service was called' % server['time_to_ready_s'])
                elif not pid_alive(server['pid']):
                    pending.remove(inst)
                    self.check('%s ready (/v2/health/ready 200)' % inst['name'], False,
                               'process %s exited before it was ready; see logs.txt' % server['pid'])
            time.sleep(0.2)
        for inst in pending:
            self.check('%s ready (/v2/health/ready 200)' % inst['name'], False, 'not ready after %ss' % timeout)

    def step_infer(self, inst):
        server = self.results['servers'][inst['name']]
        values = [1.0, 2.0, 3.0, 4.0 + inst['index']]
        body = {'inputs': [{'name': 'INPUT0', 'shape': [len(values)], 'datatype': 'FP32', 'data': values}]}
        url = 'http://127.0.0.1:%d/v2/models/%s/infer' % (inst['http_port'], MODEL)
        began = time.monotonic()
        try:
            request = urllib.request.Request(url, data=json.dumps(body).encode(), method='POST',
                                             headers={'Content-Type': 'application/json'})
            with urllib.request.urlopen(request, timeout=60) as response:
                reply = json.loads(response.read().decode())
        except Exception as exc:  # pylint: disable=broad-except
            detail = getattr(exc, 'read', lambda: b'')()
            self.check('%s inference over HTTP' % inst['name'], False, '%s %s' % (exc, detail[:500]))
            return
        latency = time.monotonic() - began
        outputs = dict((o['name'], o) for o in reply.get('outputs', []))
        out = [float(v) for v in outputs.get('OUTPUT0', {}).get('data', [])]
        dot = [float(v) for v in outputs.get('DOT', {}).get('data', [])]
        try:
            device = json.loads(bytes(int(b) for b in outputs['DEVICE']['data']).decode('utf-8'))
        except (KeyError, TypeError, ValueError):
            device = {'raw': outputs.get('DEVICE')}
        expected = [v * 2 + 1 for v in values]
        expected_dot = sum(v * v for v in values)
        server['inference'] = {'input': values, 'output': out, 'dot': dot, 'device': device,
                               'latency_s': round(latency, 4)}
        self.check('%s inference result correct' % inst['name'],
                   out == expected and len(dot) == 1 and abs(dot[0] - expected_dot) < 1e-3,
                   'OUTPUT0=%s DOT=%s (expected %s, %s) on %s via %s' % (out, dot, expected, expected_dot,
                                                                         device.get('device'), device.get('backend')))
        if not self.cpu:
            on_gpu = device.get('device') == 'cuda:0' and device.get('backend') == 'torch'
            server['model_on_cuda0_with_torch'] = on_gpu
            if on_gpu:
                self.note('%s model ran on %s (%s) with torch %s (CUDA %s), cc %s, instance kind %s' % (
                    inst['name'], device.get('device'), device.get('gpu_name'), device.get('torch'),
                    device.get('torch_cuda'), device.get('capability'), device.get('instance_kind')))
            else:
                self.note('WARNING %s model fell back to %s: %s' % (inst['name'], device.get('device'),
                                                                    device.get('fallback_reason')))

    def wait_metrics(self, inst, timeout=20):
        """Wait until the scrape holds the model's success counter (and GPU memory in gpu mode)."""
        url = 'http://127.0.0.1:%d/metrics' % inst['metrics_port']
        wanted = ['nv_inference_request_success{'] + ([] if self.cpu else ['nv_gpu_memory_total_bytes{'])
        deadline = time.monotonic() + timeout
        text = ''
        while time.monotonic() < deadline:
            text = http_text(url) or ''
            if all(w in text for w in wanted):
                return True
            time.sleep(0.5)
        self.note('%s: after %ss /metrics still lacks %s' % (inst['name'], timeout,
                                                             [w for w in wanted if w not in text]))
        return False

    def step_metrics(self, inst):
        server = self.results['servers'][inst['name']]
        self.wait_metrics(inst)
        assertions = [{'metric': 'nv_inference_request_success', 'labels': {'model': MODEL}, 'op': '>=', 'value': 1},
                      {'metric': 'nv_inference_request_failure', 'labels': {'model': MODEL}, 'op': '==', 'value': 0}]
        if not self.cpu:
            assertions.append({'metric': 'nv_gpu_memory_total_bytes', 'op': '>', 'value': 0})
            if self.gpu and self.gpu.get('uuid'):
                assertions.append({'metric': 'nv_gpu_memory_total_bytes', 'labels': {'gpu_uuid': self.gpu['uuid']},
                                   'op': '>', 'value': 0})
        rc, result = self.run_module('triton_metrics', {
            'url': 'http://127.0.0.1:%d/metrics' % inst['metrics_port'],
            'metrics': ['nv_inference_request_success', 'nv_inference_request_failure', 'nv_inference_count',
                        'nv_inference_exec_count', 'nv_gpu_*', 'nv_energy_consumption'],
            'assertions': assertions, 'use_proxy': False, 'timeout': 10,
        }, label='metrics_%s' % inst['name'])
        totals = result.get('totals') or {}
        uuids = sorted(set(s['labels'].get('gpu_uuid') for s in result.get('series') or []
                           if s['name'].startswith('nv_gpu_') and s['labels'].get('gpu_uuid')))
        server['metrics'] = {'parser': result.get('parser'), 'totals': totals, 'gpu_uuids': uuids,
                             'assertions': [a.get('msg') for a in result.get('assertion_results') or []]}
        self.check('%s triton_metrics assertions hold' % inst['name'], rc == 0 and not result.get('failed'),
                   '; '.join(a.get('msg', '') for a in result.get('assertion_results') or []) or result.get('msg', ''))
        if not self.cpu:
            facts_uuid = self.gpu.get('uuid') if self.gpu else None
            self.check('%s GPU metrics report the gpu_facts uuid' % inst['name'],
                       facts_uuid is not None and uuids == [facts_uuid],
                       'metrics %s, gpu_facts %s' % (uuids, facts_uuid))

    def shm_regions(self, prefix):
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join('/dev/shm', glob.escape(prefix) + '*')))

    def step_stop(self):
        run_dir = os.path.join(self.work, 'run')
        for inst in self.instances:
            if inst['name'] not in self.started:
                continue
            server = self.results['servers'][inst['name']]
            began = time.monotonic()
            rc, result = self.run_module('process_service', {
                'name': inst['name'], 'run_dir': run_dir, 'state': 'stopped', 'stop_timeout': 60,
            }, label='stop_%s' % inst['name'])
            server['stop_seconds'] = round(time.monotonic() - began, 2)
            self.check('process_service stopped %s' % inst['name'],
                       rc == 0 and result.get('action') == 'stopped' and not pid_alive(server['pid']),
                       'action=%s in %.2f s, pid %s alive=%s %s' % (result.get('action'), server['stop_seconds'],
                                                                    server['pid'], pid_alive(server['pid']),
                                                                    result.get('msg', '')))
            del self.started[inst['name']]
        for inst in self.instances:
            left = self.shm_regions(inst['shm_region_prefix'])
            self.results['servers'].setdefault(inst['name'], {})['shm_after_stop'] = left
            self.check('no /dev/shm region of %s remains' % inst['shm_region_prefix'], not left,
                       ', '.join(left) or 'none left')

    def cleanup(self):
        """On an aborted run: stop what is still up, the same way."""
        for name in list(self.started):
            self.run_module('process_service', {'name': name, 'run_dir': os.path.join(self.work, 'run'),
                                                'state': 'stopped', 'stop_timeout': 30}, label='cleanup_%s' % name)
            del self.started[name]

    # ------------------------------------------------------------------ main

    def run(self):
        runtime = self.python_runtime()
        self.results['python'] = runtime
        self.step_gpu_facts()
        self.step_layout()
        if not self.cpu:
            self.step_engine_fit()

        binary, backends, stub = self.prepare_backends(runtime)
        env = self.server_env(runtime)
        self.results['server_environment'] = env
        try:
            ldd = subprocess.run(['ldd', stub], env=dict(os.environ, LD_LIBRARY_PATH=env['LD_LIBRARY_PATH']),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False).stdout
        except OSError as exc:
            ldd = ('ldd not runnable: %s' % exc).encode()
        self.results['stub_ldd'] = ldd.decode('utf-8', 'replace')
        missing = [line.strip() for line in self.results['stub_ldd'].splitlines() if 'not found' in line]
        self.check('python backend stub %s links (libpython %s in %s)' % (runtime['tag'], runtime['libpython'],
                                                                          runtime['libpython_dir']),
                   not missing and os.path.exists(binary), '; '.join(missing) or 'all libraries found')
        repo = self.write_model_repository(runtime)

        self.step_start(binary, backends, repo, env)
        self.wait_ready(self.opts.ready_timeout)
        ready = [i for i in self.instances if 'time_to_ready_s' in self.results['servers'].get(i['name'], {})]
        for inst in ready:
            regions = self.shm_regions(inst['shm_region_prefix'])
            self.results['servers'][inst['name']]['shm_while_running'] = regions
            self.check('%s holds /dev/shm regions under its own prefix %s' % (inst['name'], inst['shm_region_prefix']),
                       bool(regions), ', '.join(regions) or 'none found')
        for inst in ready:
            self.step_infer(inst)
        for inst in ready:
            self.step_metrics(inst)
        self.step_stop()


def http_status(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:  # pylint: disable=broad-except
        return None


def http_text(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode('utf-8', 'replace')
    except Exception:  # pylint: disable=broad-except
        return None


def pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().split(') ', 1)[1][0] != 'Z'
    except (OSError, IndexError):
        return True


def tail_lines(path, lines):
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as exc:
        return ['(cannot read %s: %s)' % (path, exc)]
    return data.decode('utf-8', 'replace').splitlines()[-lines:]


def summary(smoke):
    res = smoke.results
    lines = ['', '=' * 78, 'h100_smoke summary (%s mode)' % ('cpu' if smoke.cpu else 'gpu'), '=' * 78]
    facts = res.get('gpu_facts') or {}
    gpu = smoke.gpu
    if gpu:
        lines.append('GPU 0        : %s (%s, sku %s)' % (gpu.get('name'), gpu.get('architecture'), gpu.get('sku')))
        lines.append('uuid         : %s   pci %s' % (gpu.get('uuid'), gpu.get('pci_bus_id')))
        lines.append('memory       : %s MiB total, %s MiB used, %s MiB free' % (
            gpu.get('memory_total_mib'), gpu.get('memory_used_mib'), gpu.get('memory_free_mib')))
        lines.append('compute cap. : %s (source %s)' % (gpu.get('compute_capability'),
                                                        gpu.get('compute_capability_source')))
        lines.append('MIG          : capable=%s current=%s pending=%s devices=%d' % (
            gpu.get('mig_capable'), (gpu.get('mig_mode') or {}).get('current'),
            (gpu.get('mig_mode') or {}).get('pending'), len(gpu.get('mig_devices') or [])))
        lines.append('power/ecc    : limit %s W, ecc %s, persistence %s, compute mode %s' % (
            gpu.get('power_limit_w'), gpu.get('ecc_enabled'), gpu.get('persistence_mode'), gpu.get('compute_mode')))
    else:
        lines.append('GPU          : none (%s)' % facts.get('tritonfleet_accelerator_reason'))
    lines.append('driver/CUDA  : %s / %s   accelerator=%s gpu_count=%s' % (
        facts.get('tritonfleet_driver_version'), facts.get('tritonfleet_cuda_version'),
        facts.get('tritonfleet_accelerator'), facts.get('tritonfleet_gpu_count')))
    py = res.get('python') or {}
    lines.append('python       : %s %s, stub %s, %s in %s' % (py.get('executable'), py.get('version'), py.get('tag'),
                                                              py.get('libpython'), py.get('libpython_dir')))
    lines.append('driver libs  : %s' % ', '.join('%s %s' % (lib, info['paths'][:1] or 'not found')
                                                 for lib, info in sorted((py.get('driver_libs') or {}).items())))
    for inst in smoke.instances:
        server = res['servers'].get(inst['name'], {})
        lines.append('%s : http %d grpc %d metrics %d shm %s gpus %s pid %s' % (
            inst['name'], inst['http_port'], inst['grpc_port'], inst['metrics_port'], inst['shm_region_prefix'],
            inst['gpus'], server.get('pid')))
        lines.append('    ready in %s s; shm while running %s; after stop %s; stop took %s s' % (
            server.get('time_to_ready_s'), server.get('shm_while_running'), server.get('shm_after_stop'),
            server.get('stop_seconds')))
        inference = server.get('inference')
        if inference:
            dev = inference.get('device') or {}
            lines.append('    infer %s -> %s, dot %s in %.1f ms on %s via %s (torch %s, %s)%s' % (
                inference['input'], inference['output'], inference['dot'], inference['latency_s'] * 1000,
                dev.get('device'), dev.get('backend'), dev.get('torch'), dev.get('gpu_name'),
                ('; fallback: %s' % dev.get('fallback_reason')) if dev.get('fallback_reason') else ''))
        metrics = server.get('metrics')
        if metrics:
            totals = metrics['totals']
            lines.append('    metrics (%s): success=%s failure=%s gpu_memory_total=%s used=%s util=%s power=%s uuids=%s'
                         % (metrics.get('parser'), totals.get('nv_inference_request_success'),
                            totals.get('nv_inference_request_failure'), totals.get('nv_gpu_memory_total_bytes'),
                            totals.get('nv_gpu_memory_used_bytes'), totals.get('nv_gpu_utilization'),
                            totals.get('nv_gpu_power_usage'), metrics.get('gpu_uuids')))
    passed = sum(1 for c in res['checks'] if c['ok'])
    lines.append('checks       : %d passed, %d failed%s' % (passed, len(smoke.failed),
                                                            (': ' + '; '.join(smoke.failed)) if smoke.failed else ''))
    lines.append('RESULT       : %s' % ('PASS' if not smoke.failed else 'FAIL'))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--site', required=True, help='target dir the wheels were installed into')
    parser.add_argument('--out', required=True)
    parser.add_argument('--work', required=True)
    parser.add_argument('--cpu', action='store_true', help='KIND_CPU model, no GPU assertions')
    parser.add_argument('--port-base', type=int, default=int(os.environ.get('H100_SMOKE_PORT_BASE', '18100')))
    parser.add_argument('--ready-timeout', type=float, default=180)
    opts = parser.parse_args()
    os.makedirs(opts.out, exist_ok=True)
    smoke = Smoke(opts)
    try:
        smoke.run()
    except Exception:  # pylint: disable=broad-except
        smoke.check('smoke script ran to the end', False, traceback.format_exc())
    finally:
        try:
            smoke.cleanup()
        except Exception:  # pylint: disable=broad-except
            smoke.check('cleanup', False, traceback.format_exc())
    smoke.results['finished_at'] = time.strftime('%Y-%m-%dT%H:%M:%S%z')
    smoke.results['passed'] = not smoke.failed
    smoke.results['failed_checks'] = smoke.failed
    with open(os.path.join(opts.out, 'results.json'), 'w') as handle:
        json.dump(smoke.results, handle, indent=2, sort_keys=True, default=str)
    with open(os.path.join(opts.out, 'logs.txt'), 'w') as handle:
        for name, server in sorted(smoke.results['servers'].items()):
            if 'log_file' in server:
                handle.write('==== %s: last 200 lines of %s\n' % (name, server['log_file']))
                handle.write('\n'.join(tail_lines(server['log_file'], 200)) + '\n\n')
    text = summary(smoke)
    print(text, flush=True)
    with open(os.path.join(opts.out, 'summary.txt'), 'w') as handle:
        handle.write(text + '\n')
    return 1 if smoke.failed else 0


if __name__ == '__main__':
    sys.exit(main())
