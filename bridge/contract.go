package bridge

import "github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"

// The MQTT contract's payload types live in mqttapi, with the topic
// tree; these names keep the bridge's API as it was.
type (
	AuthInfo     = mqttapi.AuthInfo
	AccountInfo  = mqttapi.AccountInfo
	BackendInfo  = mqttapi.BackendInfo
	BackendCar   = mqttapi.BackendCar
	SignInResult = mqttapi.SignInResult
	Result       = mqttapi.Result
	Info         = mqttapi.Info
	Check        = mqttapi.Check
	Report       = mqttapi.Report
)

// Auth states, command result statuses and doctor statuses.
const (
	StateOK             = mqttapi.StateOK
	StateReauthRequired = mqttapi.StateReauthRequired
	StateRateLimited    = mqttapi.StateRateLimited
	StateUnavailable    = mqttapi.StateUnavailable

	ResultAccepted = mqttapi.ResultAccepted
	ResultSuccess  = mqttapi.ResultSuccess
	ResultFailed   = mqttapi.ResultFailed
	ResultTimeout  = mqttapi.ResultTimeout
	ResultRejected = mqttapi.ResultRejected

	Pass = mqttapi.Pass
	Warn = mqttapi.Warn
	Fail = mqttapi.Fail
)
