#!/usr/bin/env python3
"""
Failure Monitor - Responds to process failures
Handles PROCESS_STATE_FATAL and PROCESS_STATE_EXITED events
"""

import sys
import json
import logging
from datetime import datetime
import requests

def write_stdout(s):
    sys.stdout.write(s)
    sys.stdout.flush()

def write_stderr(s):
    sys.stderr.write(s)
    sys.stderr.flush()

def send_alert(process_name, event_type, details):
    """Send critical alert to monitoring system"""
    alert = {
        'timestamp': datetime.utcnow().isoformat(),
        'severity': 'CRITICAL',
        'process': process_name,
        'event': event_type,
        'details': details,
        'system': 'trading_system'
    }
    
    # Send to monitoring endpoint
    try:
        requests.post('http://monitoring.internal/alerts', json=alert, timeout=5)
    except Exception as e:
        write_stderr(f"Failed to send alert: {e}\n")

def handle_process_fatal(headers, payload):
    """Handle FATAL process state - critical trading system failure"""
    data = dict([x.split(':') for x in payload.strip().split()])
    process_name = data['processname']
    
    write_stderr(f"CRITICAL: Process {process_name} entered FATAL state\n")
    
    # Critical processes that require immediate action
    critical_processes = ['risk_manager', 'hyperliquid_feed', 'order_executor']
    
    if process_name in critical_processes:
        send_alert(process_name, 'PROCESS_FATAL', {
            'message': f'Critical process {process_name} failed to start',
            'from_state': data.get('from_state'),
            'action_required': 'immediate_intervention'
        })
        
        # Stop all trading if risk manager fails
        if process_name == 'risk_manager':
            write_stderr("EMERGENCY: Risk manager failed - stopping all trading\n")
            # Implementation would call supervisorctl to stop trading processes
    
    return 'OK'

def handle_process_exited(headers, payload):
    """Handle process exit events"""
    data = dict([x.split(':') for x in payload.strip().split()])
    process_name = data['processname']
    expected = data.get('expected', '0')
    pid = data.get('pid')
    
    if expected == '0':  # Unexpected exit
        write_stderr(f"WARNING: Process {process_name} (PID {pid}) exited unexpectedly\n")
        
        # Log unexpected exits for analysis
        send_alert(process_name, 'UNEXPECTED_EXIT', {
            'pid': pid,
            'from_state': data.get('from_state'),
            'requires_investigation': True
        })
    
    return 'OK'

def main():
    while True:
        write_stdout('READY\n')
        
        # Read event header
        line = sys.stdin.readline()
        headers = dict([x.split(':') for x in line.split()])
        
        # Read event payload
        data = sys.stdin.read(int(headers['len']))
        
        # Process event based on type
        event_name = headers['eventname']
        
        try:
            if event_name == 'PROCESS_STATE_FATAL':
                result = handle_process_fatal(headers, data)
            elif event_name == 'PROCESS_STATE_EXITED':
                result = handle_process_exited(headers, data)
            else:
                result = 'OK'  # Ignore other events
                
            write_stdout(f'RESULT {len(result)}\n{result}')
            
        except Exception as e:
            write_stderr(f"Error processing event: {e}\n")
            write_stdout('RESULT 4\nFAIL')

if __name__ == '__main__':
    main()
