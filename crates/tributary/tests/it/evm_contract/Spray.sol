// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// An ERC-20-like token for tributary's EVM source tests: `spray(n)` emits n Transfer logs in one
/// transaction (values beyond 2^53), `odd()` emits a log whose topic 0 is Transfer's but whose data
/// does not decode as a uint256 (too short), `approveAll(n)` emits n Approval logs.
contract Spray {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event Note(string text);

    function spray(uint256 n) external {
        for (uint256 i = 0; i < n; i++) {
            emit Transfer(msg.sender, address(uint160(i + 1)), (i + 1) * 1e18 + block.number);
        }
    }

    function approveAll(uint256 n) external {
        for (uint256 i = 0; i < n; i++) {
            emit Approval(msg.sender, address(uint160(i + 7)), i);
        }
    }

    function note(string calldata text) external {
        emit Note(text);
    }

    function odd() external {
        bytes32 t = keccak256("Transfer(address,address,uint256)");
        assembly {
            mstore(0, 0x01)
            log3(0, 16, t, caller(), caller())
        }
    }
}
