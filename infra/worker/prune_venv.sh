#!/bin/sh
# Removes from the worker's venv what nothing imports at run time. Usage: prune_venv.sh VENV
# Only files go, never a package: the venv still holds exactly the worker lock's distributions.
set -eu
site="$1/lib/python3.11/site-packages"

# Bytecode is compiled again afterwards, once, for the files that stay.
find "$1" -depth -name __pycache__ -type d -exec rm -rf {} +

# Test suites shipped inside wheels (numpy's alone is ~20 MB).
find "$site" -depth -type d -name tests -not -path '*.dist-info*' -exec rm -rf {} +

# onnxruntime's model-conversion tools, quantizer and sample models: Silero only runs a session.
rm -rf "$site/onnxruntime/transformers" "$site/onnxruntime/tools" \
    "$site/onnxruntime/quantization" "$site/onnxruntime/datasets"

# botocore's API models for ~450 services (~28 MB) where the worker calls three: s3 (reports,
# config), ssm (config) and the credential chain's sts / sso / sso-oidc. A client for any other
# service fails with UnknownServiceError: add it here when the worker starts using one.
keep_services="s3 ssm sts sso sso-oidc"
for dir in "$site"/botocore/data/*/; do
    name=$(basename "$dir")
    case " $keep_services " in
        *" $name "*) rm -f "$dir"*/examples-1.json ;;
        *) rm -rf "$dir" ;;
    esac
done

# C headers and type stubs are for compilers and type checkers, not for the running worker.
find "$site" \( -name '*.h' -o -name '*.pyi' \) -not -path '*.dist-info*' -type f -delete
