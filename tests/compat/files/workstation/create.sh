#!/bin/bash
# runs once, when the instance is created: in the user's folder of the file share
set -e
echo "creating in $(pwd)"
mkdir -p tools && echo installed > tools/marker.txt
