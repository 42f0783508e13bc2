package fordapi

// Every fact of Ford's wire protocol that the client depends on lives in this
// file: hosts, paths, ids, header values and the region table. Ford changes its
// login every few months; when it does, the fix should be a diff of this file.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Hosts of the real FordPass cloud.
const (
	hostFoundational = "https://api.foundational.ford.com"
	hostVehicle      = "https://api.vehicle.ford.com"
	hostAutonomicAcc = "https://accounts.autonomic.ai"
	hostAutonomicAPI = "https://api.autonomic.ai"
	hostMPS          = "https://api.mps.ford.com" // zone lighting (ha-fordpass FORD_MPS)
)

// OAuth and B2C identifiers.
const (
	b2cTenant       = "4566605f-43a7-400a-946e-89cc9fdb0bd7"
	oauthClientID   = "09852200-05fd-41f6-8c21-d36d3497dc64"
	autonomicClient = "fordpass-prod"
	userAgent       = "okhttp/4.12.0"
)

// Paths, relative to their host. With Config.BaseURL every one of them is
// served by one origin, which is how the simulator is reached.
const (
	PathCATFromB2C        = "/api/token/v2/cat-with-b2c-access-token"
	PathCATRefresh        = "/api/token/v2/cat-with-refresh-token"
	PathAutonomicToken    = "/v1/auth/oidc/token"
	PathVehicleList       = "/api/expdashboard/v1/details/"
	PathGarage            = "/api/fpcpl-user-garage-service/v1/user/garage" // the newer app's list, on the vehicle host
	pathTelemetryPrefix   = "/v1/telemetry/sources/fordpass/vehicles/"
	pathCommandPrefix     = "/v1/command/vehicles/"
	pathCommandBetaPrefix = "/v1beta/command/vehicles/"
	pathStreamPrefix      = "/v1beta/telemetry/sources/fordpass/vehicles/"
	// The remote climate profile, on the vehicle host: read with POST
	// {"vin":…}, written with PUT (ha-fordpass fordpass_bridge.py,
	// req_remote_climate and setRemoteClimateControl).
	PathClimateProfile       = "/api/rcc/profile/status"
	PathClimateProfileUpdate = "/api/rcc/profile/update"
	// Zone lighting, on the MPS host, each with the body {"vin":…}: PUT
	// turns the lights on, DELETE off, and PUT on a zone's path picks
	// the zone (ha-fordpass, set_zone_lighting).
	PathZoneLightsActivation = "/vehicles/vpfi/zonelightingactivation"
	// PathGuardMode is guard mode's session on the MPS host (PUT on, DELETE
	// off, with the X-Vin header; ha-fordpass __request_command).
	PathGuardMode        = "/api/gmfi/v1/session"
	pathZoneLightsPrefix = "/vehicles/vpfi/"
	telemetryQuery       = "lrdt=01-01-1970%2000:00:00"
	vehicleListBody      = `{"dashboardRefreshRequest":"All"}`
	tokenExchangeGrant   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenExchangeSubType = "urn:ietf:params:oauth:token-type:jwt"
)

// PathB2C returns the path of a B2C endpoint ("authorize" or "token") for a
// region.
func PathB2C(r Region, endpoint string) string {
	return "/" + b2cTenant + "/" + r.policy() + "/oauth2/v2.0/" + endpoint
}

// PathTelemetry is the REST telemetry path of a vehicle.
func PathTelemetry(vin string) string { return pathTelemetryPrefix + vin }

// PathCommands is the command path of a vehicle.
func PathCommands(vin string) string { return pathCommandPrefix + vin + "/commands" }

// PathCommandsBeta is the newer command path, where a command names its
// version (the charging commands: ha-fordpass fordpass_bridge.py,
// AUTONOMIC_BETA_URL).
func PathCommandsBeta(vin string) string { return pathCommandBetaPrefix + vin + "/commands" }

// PathZoneLightsZone is the path that picks a lighting zone ("0" all, "1"
// front, "2" rear, "3" driver, "4" passenger).
func PathZoneLightsZone(zone string) string { return pathZoneLightsPrefix + zone + "/zonelightingzone" }

// PathStream is the telemetry websocket path of a vehicle.
func PathStream(vin string) string { return pathStreamPrefix + vin + "/ws" }

// OAuthClientID is the B2C client id the FordPass app uses (all regions).
const OAuthClientID = oauthClientID

// Command types understood by the Autonomic command endpoint.
const (
	CmdLock              = "lock"
	CmdUnlock            = "unlock"
	CmdRemoteStart       = "remoteStart"
	CmdCancelRemoteStart = "cancelRemoteStart"
	CmdStatusRefresh     = "statusRefresh"
	CmdPanicCue          = "startPanicCue"
	// The charging commands, sent on PathCommandsBeta with version
	// ChargeVersion (their state is reported as <type>Command, like the
	// others).
	CmdStartCharge  = "startGlobalCharge"
	CmdPauseCharge  = "pauseGlobalCharge"
	CmdCancelCharge = "cancelGlobalCharge"
	// CmdChargeSettings sets the charge target (chargeSettings).
	CmdChargeSettings = "updateChargeSettings"
	ChargeVersion     = "1.0.1"
	// The departure times of an electric car, on the newer path with
	// version 1 and by their bare type (ha-fordpass fordpass_bridge.py,
	// departure_times_enable and departure_times_disable: the app sends
	// "type": "enableDepartureTimes", not …Command).
	CmdEnableDepartureTimes  = "enableDepartureTimes"
	CmdDisableDepartureTimes = "disableDepartureTimes"
	// CmdUpdateDepartureTimes sets the schedules ({"departureSchedules":
	// […], "isDepartureTimeEnabled": true}, ha-fordpass
	// departure_times_update, from its PR #215: its maintainer could not
	// confirm it on his car).
	CmdUpdateDepartureTimes = "updateDepartureTimes"
	DepartureVersion        = "1"
	// CmdASUSettings turns automatic software updates on or off
	// ({"ASUState":"ON"|"OFF"}), on the newer path with version 1.0.0 as
	// ha-fordpass sends it (fordpass_bridge.py, auto_updates_on and _off;
	// its data_version default).
	CmdASUSettings = "publishASUSettings"
	ASUVersion     = "1.0.0"
	// The trailer light check, on the older path (FORDPASS-API.md §3.1;
	// ha-fordpass notes it does not work for its maintainer's car).
	CmdStartTrailerLightCheck = "startTrailerLightCheck"
	CmdStopTrailerLightCheck  = "stopTrailerLightCheck"
)

// bareTypes are the commands of the newer path Ford takes by their bare
// type; the others it takes as <type>Command.
var bareTypes = map[string]bool{CmdEnableDepartureTimes: true, CmdDisableDepartureTimes: true, CmdUpdateDepartureTimes: true}

// WireType is a command's type as it is sent: the bare type on the older
// path and for bareTypes, else <type>Command.
func WireType(cmdType, version string) string {
	if version == "" || bareTypes[cmdType] {
		return cmdType
	}
	return cmdType + "Command"
}

// CommandVersions are the command types Ford runs, each with its version
// ("" for the older command path, which has none). The simulator takes
// the same list: a new command type is one constant and one entry here.
var CommandVersions = map[string]string{
	CmdLock: "", CmdUnlock: "", CmdRemoteStart: "", CmdCancelRemoteStart: "", CmdStatusRefresh: "", CmdPanicCue: "",
	CmdStartCharge: ChargeVersion, CmdPauseCharge: ChargeVersion, CmdCancelCharge: ChargeVersion, CmdChargeSettings: ChargeVersion,
	CmdEnableDepartureTimes: DepartureVersion, CmdDisableDepartureTimes: DepartureVersion, CmdUpdateDepartureTimes: DepartureVersion,
	CmdASUSettings: ASUVersion, CmdStartTrailerLightCheck: "", CmdStopTrailerLightCheck: "",
}

// Ford's names of the capabilities the bridge's commands need.
const (
	CapRemoteLock    = "remoteLock"
	CapRemoteStart   = "remoteStart"
	CapPanicAlarm    = "remotePanicAlarm"
	CapRemoteClimate = "remoteClimateControl" // or the profile's remoteHeatingCooling
	CapZoneLighting  = "zoneLighting"         // with numberOfLightingZones above 0
	// The profile's heated steering wheel (heatedSteeringWheel), and its
	// seats (driverHeatedSeat: "None", "Heat Only" or "Heat with Vent",
	// as ha-fordpass __init__.py reads it): CapHeatedSeats for heat,
	// CapVentedSeats for "Heat with Vent".
	CapDepartureTimes = "departureTimes" // ha-fordpass __init__.py reads it
	// The trailer light check and guard mode, flags ha-fordpass
	// __init__.py reads from the capabilities.
	CapTrailerLightCheck = "trailerLightCheck"
	CapGuardMode         = "guardMode"
	// CapManualGearbox: the profile's transmissionIndicator is not "A"
	// (automatic); ha-fordpass shows the gear lever only with "A".
	CapManualGearbox = "transmissionIndicator:manual"
	CapHeatedWheel   = "heatedSteeringWheel"
	CapHeatedSeats   = "driverHeatedSeat"
	CapVentedSeats   = "driverHeatedSeat:vent"
)

// Application ids by region group.
const (
	appIDEurope      = "667D773E-1BDC-4139-8AD0-2B16474E8DC7"
	appIDNorthAm     = "BFE8C5ED-D687-4C19-A5DD-F92CDFC4503A"
	appIDAsiaPacific = "39CD6590-B1B9-42CB-BEF9-0DC1FDB96260"
	appIDAfrica      = "71AA9ED7-B26B-4C15-835E-9F35CC238561"
	appIDSouthAm     = "C1DFFEF5-5BA5-486A-9054-8B39A9DF9AFC"
	appIDLincoln     = "45133B88-0671-4AAF-B8D1-99E684ED4E45"
)

// Region is one row of Ford's region table: where to sign in and how to
// identify the app.
type Region struct {
	Key         string
	LoginHost   string // scheme and host of the B2C login
	Locale      string // e.g. en-US
	CountryCode string // ISO 3166 alpha-3
	AppID       string // Application-Id header
	Lincoln     bool
	// Status is what is known of the region from maintained integrations
	// (RegionConfirmed, …).
	Status string
}

// What is known of a region. The source is ha-fordpass's region table
// (custom_components/fordpass/const.py of release 2026.7.2, the most used
// maintained integration): its comments mark the regions its maintainer
// checked ("checked 2025/06/08 - working fine", Denmark 2026/02/19), the
// ones that need a local account and the ones that do not work; the rest
// of its table is offered without a note.
const (
	RegionConfirmed    = "confirmed"     // a maintained integration reports signing in with it
	RegionUsed         = "used"          // a maintained integration offers it; no report of a check
	RegionLocalAccount = "local account" // works only with an account registered on the country's Ford site
	RegionNotWorking   = "not working"   // a maintained integration reports that sign-in fails
	RegionUnconfirmed  = "unconfirmed"   // no maintained integration is known to use it
)

// RedirectScheme is the custom URL scheme the login ends on.
func (r Region) RedirectScheme() string {
	if r.Lincoln {
		return "lincolnapp"
	}
	return "fordapp"
}

// RedirectURI is the OAuth redirect URI of the region's brand.
func (r Region) RedirectURI() string { return r.RedirectScheme() + "://userauthorized" }

func (r Region) policy() string {
	if r.Lincoln {
		return "B2C_1A_SignInSignUp_Lincoln_" + r.Locale
	}
	return "B2C_1A_SignInSignUp_" + r.Locale
}

const fordLogin = "https://login.ford.com"

var regions = map[string]Region{
	"usa":            {Key: "usa", LoginHost: fordLogin, Locale: "en-US", CountryCode: "USA", AppID: appIDNorthAm},
	"can":            {Key: "can", LoginHost: fordLogin, Locale: "en-CA", CountryCode: "CAN", AppID: appIDNorthAm},
	"mex":            {Key: "mex", LoginHost: fordLogin, Locale: "es-MX", CountryCode: "MEX", AppID: appIDNorthAm},
	"rest_of_world":  {Key: "rest_of_world", LoginHost: fordLogin, Locale: "en-US", CountryCode: "USA", AppID: appIDNorthAm},
	"deu":            {Key: "deu", LoginHost: "https://login.ford.de", Locale: "de-DE", CountryCode: "DEU", AppID: appIDEurope},
	"gbr":            {Key: "gbr", LoginHost: "https://login.ford.co.uk", Locale: "en-GB", CountryCode: "GBR", AppID: appIDEurope},
	"nor":            {Key: "nor", LoginHost: "https://login.ford.no", Locale: "no-NO", CountryCode: "NOR", AppID: appIDEurope},
	"pol":            {Key: "pol", LoginHost: "https://login.ford.pl", Locale: "pl-PL", CountryCode: "POL", AppID: appIDEurope},
	"fra":            {Key: "fra", LoginHost: fordLogin, Locale: "fr-FR", CountryCode: "FRA", AppID: appIDEurope},
	"ita":            {Key: "ita", LoginHost: fordLogin, Locale: "it-IT", CountryCode: "ITA", AppID: appIDEurope},
	"esp":            {Key: "esp", LoginHost: fordLogin, Locale: "es-ES", CountryCode: "ESP", AppID: appIDEurope},
	"nld":            {Key: "nld", LoginHost: fordLogin, Locale: "nl-NL", CountryCode: "NLD", AppID: appIDEurope},
	"bel":            {Key: "bel", LoginHost: fordLogin, Locale: "nl-BE", CountryCode: "BEL", AppID: appIDEurope},
	"aut":            {Key: "aut", LoginHost: fordLogin, Locale: "de-AT", CountryCode: "AUT", AppID: appIDEurope},
	"che":            {Key: "che", LoginHost: fordLogin, Locale: "de-CH", CountryCode: "CHE", AppID: appIDEurope},
	"dnk":            {Key: "dnk", LoginHost: fordLogin, Locale: "da-DK", CountryCode: "DNK", AppID: appIDEurope},
	"fin":            {Key: "fin", LoginHost: fordLogin, Locale: "fi-FI", CountryCode: "FIN", AppID: appIDEurope},
	"swe":            {Key: "swe", LoginHost: fordLogin, Locale: "sv-SE", CountryCode: "SWE", AppID: appIDEurope},
	"irl":            {Key: "irl", LoginHost: fordLogin, Locale: "en-IE", CountryCode: "IRL", AppID: appIDEurope},
	"prt":            {Key: "prt", LoginHost: fordLogin, Locale: "pt-PT", CountryCode: "PRT", AppID: appIDEurope},
	"rest_of_europe": {Key: "rest_of_europe", LoginHost: fordLogin, Locale: "en-GB", CountryCode: "GBR", AppID: appIDEurope},
	"aus":            {Key: "aus", LoginHost: fordLogin, Locale: "en-AU", CountryCode: "AUS", AppID: appIDAsiaPacific},
	"nzl":            {Key: "nzl", LoginHost: fordLogin, Locale: "en-NZ", CountryCode: "NZL", AppID: appIDAsiaPacific},
	"zaf":            {Key: "zaf", LoginHost: fordLogin, Locale: "en-ZA", CountryCode: "ZAF", AppID: appIDAfrica},
	"bra":            {Key: "bra", LoginHost: fordLogin, Locale: "pt-BR", CountryCode: "BRA", AppID: appIDSouthAm},
	"arg":            {Key: "arg", LoginHost: fordLogin, Locale: "es-AR", CountryCode: "ARG", AppID: appIDSouthAm},
	"lincoln_usa":    {Key: "lincoln_usa", LoginHost: "https://login.lincoln.com", Locale: "en-US", CountryCode: "USA", AppID: appIDLincoln, Lincoln: true},
}

var regionStatus = map[string]string{
	"deu": RegionConfirmed, "fra": RegionConfirmed, "ita": RegionConfirmed, "esp": RegionConfirmed, "nld": RegionConfirmed,
	"gbr": RegionConfirmed, "can": RegionConfirmed, "mex": RegionConfirmed, "usa": RegionConfirmed, "dnk": RegionConfirmed,
	"rest_of_europe": RegionUsed, "rest_of_world": RegionUsed, "lincoln_usa": RegionUsed,
	"nor": RegionUsed, "pol": RegionUsed, "prt": RegionUsed,
	"aus": RegionLocalAccount, "nzl": RegionLocalAccount, "zaf": RegionLocalAccount,
	"bra": RegionNotWorking, "arg": RegionNotWorking,
}

func init() {
	for k, r := range regions {
		r.Status = regionStatus[k]
		if r.Status == "" {
			r.Status = RegionUnconfirmed
		}
		regions[k] = r
	}
}

// RegionsWithStatus lists the region keys whose status is one of statuses,
// sorted.
func RegionsWithStatus(statuses ...string) []string {
	var out []string
	for _, k := range RegionKeys() {
		if slices.Contains(statuses, regions[k].Status) {
			out = append(out, k)
		}
	}
	return out
}

// LookupRegion returns the region for a key such as "usa" or "deu".
func LookupRegion(key string) (Region, error) {
	r, ok := regions[strings.ToLower(strings.TrimSpace(key))]
	if !ok {
		return Region{}, fmt.Errorf("unknown region %q (known: %s)", key, strings.Join(RegionKeys(), ", "))
	}
	return r, nil
}

// RegionKeys lists the known region keys, sorted.
func RegionKeys() []string {
	keys := make([]string, 0, len(regions))
	for k := range regions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hosts resolves the origins to call; one origin for all when base is set.
type hosts struct {
	login, foundational, vehicle, autonomicAccounts, autonomicAPI, mps string
}

func resolveHosts(r Region, base string) hosts {
	if base != "" {
		base = strings.TrimRight(base, "/")
		return hosts{base, base, base, base, base, base}
	}
	return hosts{r.LoginHost, hostFoundational, hostVehicle, hostAutonomicAcc, hostAutonomicAPI, hostMPS}
}

// Origins lists the distinct origins the client calls for a region (one when
// base is set), for reachability checks.
func Origins(r Region, base string) []string {
	h := resolveHosts(r, base)
	out := []string{}
	for _, o := range []string{h.login, h.foundational, h.vehicle, h.autonomicAccounts, h.autonomicAPI, h.mps} {
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}
