package fordapi

import "time"

// AutonomicExpiry is when the cached Autonomic token ends (zero: none); for
// tests that advance a fake clock in step with the client.
func (c *Client) AutonomicExpiry() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auto == nil {
		return time.Time{}
	}
	return c.auto.Expiry
}

// CapabilitiesForTest reads a car's capabilities as the vehicle lists do.
var CapabilitiesForTest = capabilities
