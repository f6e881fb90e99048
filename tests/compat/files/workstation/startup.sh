#!/bin/bash
# runs at every start (after the creation script on the first)
echo "starting ($1) with $(nproc) cores"
echo started >> tools/starts.txt
